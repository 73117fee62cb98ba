/**
 * The BEP 10 extended handshake on a download's or seed's connections, the
 * policy over wire/extension.ts's codec: what ours offers (BEP 9 ut_metadata
 * and BEP 11 ut_pex under our ids, never for a private torrent, BEP 27; our
 * reqq, client name and listen port) and what a peer's means for its
 * connection (the ids it wants ut_metadata and ut_pex under, its reqq as a
 * cap on our requests in flight, its `p` as an incoming peer's identity in
 * the pool). Pure but for applyPeerExtensions, which sets the result on the
 * connection's state; the session sends ours and adds the peer to its pool.
 */
import { peerKey } from '../core/ids.js';
import type { PeerAddress } from '../core/peer-address.js';
import { encodeExtendedHandshake, type ExtendedHandshake } from '../wire/extension.js';
import { OUR_UT_PEX_ID, UT_PEX } from '../wire/pex.js';
import { OUR_UT_METADATA_ID, UT_METADATA } from '../wire/ut-metadata.js';
import { MAX_QUEUE_DEPTH } from './pipeline.js';
import { MAX_PEER_REQUESTS } from './uploader.js';

/** `v` in our extended handshake (BEP 10). */
export const CLIENT_NAME = 'tt/0.1.0';

/** What our extended handshake depends on. */
export interface OurExtensions {
  /** BEP 27: a private torrent's metadata and peers stay off public channels, so neither ut_metadata nor ut_pex is offered. */
  isPrivate: boolean;
  /** BEP 11 peer exchange is on for this torrent. */
  pex: boolean;
  /** BEP 9 `metadata_size`: the info dictionary's length in bytes. */
  metadataSize: number;
  /** `p`: the port we accept connections on. */
  listenPort: number;
}

/** The payload of our extended handshake (extended message id 0). */
export function ourExtendedHandshake(ours: OurExtensions): Buffer {
  return encodeExtendedHandshake({
    // BEP 9: magnet users fetch the info dictionary from us (not for private torrents: BEP 27 keeps them off public channels)
    ...(ours.isPrivate
      ? { m: {} }
      : { m: { [UT_METADATA]: OUR_UT_METADATA_ID, ...(ours.pex ? { [UT_PEX]: OUR_UT_PEX_ID } : {}) }, metadataSize: ours.metadataSize }),
    v: CLIENT_NAME,
    reqq: MAX_PEER_REQUESTS,
    p: ours.listenPort,
  });
}

/** What a peer's extended handshake sets on its connection; undefined: leave that as it is. */
export interface PeerExtensions {
  /** BEP 9: the id it wants ut_metadata messages under (0: it does not take them). */
  utMetadataId: number;
  /** BEP 11: the id it wants ut_pex messages under (0: none); undefined while PEX is off for us. */
  utPexId: number | undefined;
  /** The most requests we keep in flight to it: its reqq, within 1..MAX_QUEUE_DEPTH. */
  maxQueueDepth: number | undefined;
  /** A peer not yet in the pool (it connected to us) says where it listens: its IP with its `p`. */
  listenAddress: PeerAddress | undefined;
}

/** The connection a peer's extended handshake arrived on, as the rules read it. */
export interface ExtensionPeer {
  readonly conn: { readonly host: string };
  /** Its pool entry: the address we dialed, or one learnt from an earlier `p`; undefined for an incoming peer until then. */
  poolKey: string | undefined;
}

/** What the peer's extended handshake `ext` means for its connection (`pex`: BEP 11 is on for us). */
export function peerExtensions(ext: ExtendedHandshake, peer: ExtensionPeer, pex: boolean): PeerExtensions {
  const { p, reqq } = ext;
  return {
    utMetadataId: ext.m.get(UT_METADATA) ?? 0,
    utPexId: pex ? (ext.m.get(UT_PEX) ?? 0) : undefined,
    maxQueueDepth: reqq !== undefined && reqq > 0 ? Math.min(MAX_QUEUE_DEPTH, Math.max(1, reqq)) : undefined,
    listenAddress: !peer.poolKey && p !== undefined && p > 0 && p < 65536 ? { host: peer.conn.host, port: p } : undefined,
  };
}

/** The fields of the session's PeerState a peer's extended handshake sets. */
export interface ExtensionState extends ExtensionPeer {
  utMetadataId: number;
  utPexId: number;
  maxQueueDepth: number;
  listenAddress: PeerAddress | undefined;
}

/**
 * Set what peerExtensions found on the connection's state. Returns the
 * listen address it learnt, if any, now the connection's pool key: the
 * caller adds it to the pool as connected, so it is never dialed a second
 * time.
 */
export function applyPeerExtensions(state: ExtensionState, found: PeerExtensions): PeerAddress | undefined {
  state.utMetadataId = found.utMetadataId;
  if (found.utPexId !== undefined) state.utPexId = found.utPexId;
  if (found.maxQueueDepth !== undefined) state.maxQueueDepth = found.maxQueueDepth;
  const listen = found.listenAddress;
  if (listen) {
    state.poolKey = peerKey(listen.host, listen.port);
    state.listenAddress = listen;
  }
  return listen;
}
