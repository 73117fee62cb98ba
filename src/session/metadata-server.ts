/**
 * Serving our metadata (BEP 9, ut_metadata): a request is answered with the
 * asked piece of the info dictionary, or a reject, per connection bounded so
 * that a 16 KiB answer to a 20-byte request is never an amplifier: at most
 * MAX_METADATA_COPIES copies of the whole, then rejects, then the connection
 * is closed. Whether to serve at all (never for a private torrent, BEP 27)
 * and the extended handshake that offers it are the session's.
 */
import { metadataPieceCount } from '../metainfo/metadata.js';
import type { PeerConnection } from '../peer/connection.js';
import { encodeMetadataData, encodeMetadataReject, parseMetadataMessage } from '../wire/ut-metadata.js';
import { SEND_HIGH_WATER_BYTES } from './uploader.js';

/** ut_metadata requests answered per connection: this many copies of the whole info dictionary. */
export const MAX_METADATA_COPIES = 4;
/** Requests answered with a reject past the copies, before the connection is closed. */
export const METADATA_SPARE_REQUESTS = 16;

/** What serving reads and counts of one connection (the session's PeerState is one). */
export interface MetadataPeer {
  readonly conn: Pick<PeerConnection, 'writableLength' | 'send' | 'close'>;
  /** BEP 9: the extended id the peer wants ut_metadata messages under (0: it does not take them). */
  readonly utMetadataId: number;
  /** ut_metadata requests answered on this connection. */
  metadataRequests: number;
}

export class MetadataServer {
  /** The info dictionary's bytes as in the .torrent (their SHA-1 is the info hash). */
  readonly #metadata: Buffer;
  readonly #pieceCount: number;

  constructor(rawInfo: Buffer) {
    this.#metadata = rawInfo;
    this.#pieceCount = metadataPieceCount(rawInfo.length);
  }

  /**
   * One ut_metadata message from `peer`: a request is answered with the
   * piece of our info dictionary (or a reject once the peer asked for more
   * than a few full copies, or while it does not read what we send). Data
   * and rejects sent to us are ignored: we have the metadata. A malformed
   * message throws (parseMetadataMessage), which closes the connection.
   */
  onMessage(peer: MetadataPeer, payload: Buffer): void {
    const msg = parseMetadataMessage(payload);
    if (msg?.type !== 'request' || peer.utMetadataId === 0) return;
    const count = this.#pieceCount;
    if (++peer.metadataRequests > MAX_METADATA_COPIES * count + METADATA_SPARE_REQUESTS) {
      peer.conn.close(`protocol error: more than ${MAX_METADATA_COPIES} copies of the metadata asked for`);
      return;
    }
    // a peer that does not read what we send gets rejects, which cost 40 bytes, not 16 KiB each
    const canSend = msg.piece < count && peer.metadataRequests <= MAX_METADATA_COPIES * count && peer.conn.writableLength <= SEND_HIGH_WATER_BYTES;
    const reply = canSend ? encodeMetadataData(this.#metadata, msg.piece) : encodeMetadataReject(msg.piece);
    peer.conn.send({ type: 'extended', id: peer.utMetadataId, payload: reply });
  }
}
