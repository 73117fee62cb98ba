/**
 * Pieces that lie wholly in BEP 47 padding, and what parseTorrent() demands of
 * them. Padding is zeros by definition, so such a piece (only a crafted torrent
 * has one: libtorrent's pad files are shorter than a piece) is known without
 * anyone's bytes: its hash must be that of zeros of its length, which is
 * checked once here, when the torrent is read, and from then on the piece is
 * had from the start, never read, hashed, requested or waited for (storage's
 * check, the session's `have`). A piece whose hash is not that of zeros could
 * never be had, and a torrent of nothing but padding holds no data: both are
 * invalid torrents. Cost: O(files + whole-padding pieces), and SHA-1 over at
 * most two piece sizes of zeros (the piece length and the last piece's), each
 * hashed once per process through one reused zero chunk. Pure apart from
 * that small cache.
 */
import { createHash } from 'node:crypto';
import { MetainfoError } from '../core/errors.js';

export interface PaddedSpan {
  readonly offset: number;
  readonly length: number;
  readonly padding?: boolean | undefined;
}

/**
 * The torrent's padding as maximal byte ranges [start, end), ascending:
 * consecutive padding files (empty files between them hold no byte) are one run.
 */
export function paddingRuns(files: readonly PaddedSpan[]): Array<readonly [number, number]> {
  const out: Array<[number, number]> = [];
  for (const f of files) {
    if (!f.padding || f.length === 0) continue;
    const last = out.at(-1);
    if (last !== undefined && last[1] === f.offset) last[1] = f.offset + f.length;
    else out.push([f.offset, f.offset + f.length]);
  }
  return out;
}

/** Half-open ranges [first, end) of piece indices, ascending: every piece of them lies wholly in padding. */
export function wholePaddingPieces(files: readonly PaddedSpan[], pieceLength: number, totalLength: number): Array<readonly [number, number]> {
  const out: Array<readonly [number, number]> = [];
  for (const [start, end] of paddingRuns(files)) {
    const first = Math.ceil(start / pieceLength);
    // the short last piece counts when the padding runs to the torrent's end
    const last = end >= totalLength ? Math.ceil(totalLength / pieceLength) : Math.floor(end / pieceLength);
    if (first < last) out.push([first, last]);
  }
  return out;
}

/** Every piece index in `ranges` (from wholePaddingPieces). */
export function* piecesIn(ranges: ReadonlyArray<readonly [number, number]>): Generator<number> {
  for (const [first, end] of ranges) for (let i = first; i < end; i++) yield i;
}

const ZERO_CHUNK_BYTES = 1024 * 1024;
let zeroChunk: Buffer | undefined;
/** SHA-1 of `length` zero bytes, by length (a torrent needs at most two). */
const zeroHashes = new Map<number, Buffer>();

/** SHA-1 of `length` zero bytes, through one reused zero chunk (never a buffer of `length`). */
export function sha1OfZeros(length: number): Buffer {
  const cached = zeroHashes.get(length);
  if (cached) return cached;
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  const hash = createHash('sha1');
  for (let left = length; left > 0; left -= ZERO_CHUNK_BYTES) hash.update(zeroChunk.subarray(0, Math.min(left, ZERO_CHUNK_BYTES)));
  const digest = hash.digest();
  if (zeroHashes.size >= 8) zeroHashes.clear();
  zeroHashes.set(length, digest);
  return digest;
}

/**
 * parseTorrent()'s rules for padding: some file must not be padding, and
 * each piece wholly in padding must hash as zeros of its length. Throws a
 * MetainfoError naming the first piece that does not.
 */
export function checkPaddingPieces(files: readonly PaddedSpan[], pieceLength: number, totalLength: number, pieces: Buffer): void {
  if (files.every((f) => f.padding)) throw new MetainfoError('info.files', 'every file is BEP 47 padding: the torrent holds no data');
  for (const index of piecesIn(wholePaddingPieces(files, pieceLength, totalLength))) {
    const size = Math.min(pieceLength, totalLength - index * pieceLength);
    if (!sha1OfZeros(size).equals(pieces.subarray(index * 20, index * 20 + 20))) {
      throw new MetainfoError(
        'info.pieces',
        `piece ${index} lies wholly in BEP 47 padding (zeros), but its hash is not that of ${size} zero bytes: no peer could ever give it`,
      );
    }
  }
}
