/**
 * The info dictionary fetched from peers for a magnet link (BEP 9): collecting
 * its 16 KiB pieces, checking the whole against the magnet's info hash, and
 * turning the verified bytes into the same validated Metainfo a .torrent file
 * gives (so nothing downstream can tell the two apart). Pure: no sockets.
 */
import { createHash } from 'node:crypto';
import { encode } from './bencode.js';
import type { Metainfo } from './metainfo.js';
import { parseTorrent } from './parse-torrent.js';

/** Metadata is exchanged in pieces of 16 KiB; only the last may be shorter. */
export const METADATA_PIECE_BYTES = 16 * 1024;
/** Largest info dictionary we fetch or serve: the .torrent size limit (HARDENING.md). */
export const MAX_METADATA_BYTES = 10 * 1024 * 1024;

/** How many 16 KiB pieces `size` bytes of metadata take. */
export function metadataPieceCount(size: number): number {
  return Math.ceil(size / METADATA_PIECE_BYTES);
}

/** Byte length of metadata piece `piece` of `size` bytes in all. */
export function metadataPieceLength(size: number, piece: number): number {
  return Math.min(METADATA_PIECE_BYTES, size - piece * METADATA_PIECE_BYTES);
}

export type VerifyResult = { readonly ok: true; readonly metadata: Buffer } | { readonly ok: false; readonly sources: string[] };

/** Pieces of one info dictionary of a size the first peer announced, and who sent each. */
export class MetadataAssembler {
  readonly infoHash: Buffer;
  readonly size: number;
  readonly pieceCount: number;
  readonly #pieces: (Buffer | undefined)[];
  readonly #sources: (string | undefined)[];
  #received = 0;

  constructor(infoHash: Buffer, size: number) {
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_METADATA_BYTES) throw new RangeError(`metadata size ${size}`);
    this.infoHash = infoHash;
    this.size = size;
    this.pieceCount = metadataPieceCount(size);
    this.#pieces = new Array<Buffer | undefined>(this.pieceCount).fill(undefined);
    this.#sources = new Array<string | undefined>(this.pieceCount).fill(undefined);
  }

  get complete(): boolean {
    return this.#received === this.pieceCount;
  }

  has(piece: number): boolean {
    return this.#pieces[piece] !== undefined;
  }

  /** Pieces still missing, lowest first. */
  missing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.pieceCount; i++) if (this.#pieces[i] === undefined) out.push(i);
    return out;
  }

  /**
   * Keep a copy of piece `piece` from `source`. False (and nothing kept) when
   * it is out of range, the wrong length, or already here.
   */
  add(piece: number, data: Uint8Array, source: string): boolean {
    if (!Number.isInteger(piece) || piece < 0 || piece >= this.pieceCount) return false;
    if (this.#pieces[piece] !== undefined || data.length !== metadataPieceLength(this.size, piece)) return false;
    this.#pieces[piece] = Buffer.from(data);
    this.#sources[piece] = source;
    this.#received++;
    return true;
  }

  /**
   * Once complete: the metadata when its SHA-1 is the info hash; otherwise
   * every piece is dropped and the peers that sent them are named.
   */
  verify(): VerifyResult {
    if (!this.complete) throw new Error('metadata is not complete');
    const metadata = Buffer.concat(this.#pieces as Buffer[], this.size);
    if (createHash('sha1').update(metadata).digest().equals(this.infoHash)) return { ok: true, metadata };
    const sources = [...new Set(this.#sources.filter((s): s is string => s !== undefined))];
    this.#pieces.fill(undefined);
    this.#sources.fill(undefined);
    this.#received = 0;
    return { ok: false, sources };
  }
}

/**
 * A Metainfo from a verified info dictionary and the magnet's trackers (each
 * its own tier, as a magnet's `tr` list has no tiers): the bytes of the
 * .torrent file that would have carried them, parsed by parseTorrent, so the
 * validation (paths, sizes, piece hashes) is the one every torrent gets.
 * Throws MetainfoError / BencodeError when the dictionary is not a usable torrent.
 */
export function torrentFromMetadata(rawInfo: Buffer, trackers: readonly string[], webSeeds: readonly string[] = []): Metainfo {
  return parseTorrent(torrentFileBytes(rawInfo, trackers, webSeeds));
}

/** The .torrent file for `rawInfo`: announce, announce-list, info and url-list, keys in bencode order. */
export function torrentFileBytes(rawInfo: Buffer, trackers: readonly string[], webSeeds: readonly string[] = []): Buffer {
  const head = encode({
    ...(trackers.length > 0 ? { announce: trackers[0]!, 'announce-list': trackers.map((t) => [t]) } : {}),
  });
  // splice the raw info bytes in as the last key ('info' sorts after 'announce-list'), exactly as hashed
  // 'url-list' sorts after 'info'
  const tail = webSeeds.length > 0 ? encode({ 'url-list': [...webSeeds] }).subarray(1) : Buffer.from('e');
  return Buffer.concat([head.subarray(0, head.length - 1), Buffer.from('4:info'), rawInfo, tail]);
}

