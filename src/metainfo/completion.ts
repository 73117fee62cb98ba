/**
 * How much of each file a set of verified pieces covers (`tt verify`): a
 * file's bytes that lie in verified pieces. A file is complete when all of
 * its bytes do; a zero-length file always is. Also where BEP 47 padding lies,
 * so that sizes shown to people count the files' bytes only (piece math keeps
 * counting the padding: it is hashed). Pure: Metainfo + Bitfield in,
 * numbers out; O(files + pieces).
 */
import type { Bitfield } from '../core/bitfield.js';
import type { Metainfo } from './metainfo.js';

export interface FileCompletion {
  /** Index into meta.files. */
  readonly fileIndex: number;
  readonly length: number;
  /** Bytes of the file inside verified pieces. */
  readonly verifiedBytes: number;
}

/** One entry per file of `meta` (padding included: callers number files without it). */
export function fileCompletion(meta: Metainfo, have: Bitfield): FileCompletion[] {
  const { pieceLength, totalLength } = meta;
  // verified bytes before each piece boundary: a file's share is a difference of two prefix sums
  // plus the partial pieces at its ends
  const prefix = new Float64Array(meta.pieceCount + 1);
  for (let i = 0; i < meta.pieceCount; i++) {
    const size = Math.min(pieceLength, totalLength - i * pieceLength);
    prefix[i + 1] = prefix[i]! + (have.has(i) ? size : 0);
  }
  const verifiedUpTo = (pos: number): number => {
    const piece = Math.floor(pos / pieceLength);
    const inPiece = pos - piece * pieceLength;
    return prefix[piece]! + (inPiece > 0 && have.has(piece) ? inPiece : 0);
  };
  return meta.files.map((f, fileIndex) => ({
    fileIndex,
    length: f.length,
    verifiedBytes: f.length === 0 ? 0 : verifiedUpTo(f.offset + f.length) - verifiedUpTo(f.offset),
  }));
}

/** Bytes of BEP 47 padding files in each piece that holds any (most pieces hold none). */
export function paddingByPiece(meta: Metainfo): ReadonlyMap<number, number> {
  const out = new Map<number, number>();
  for (const f of meta.files) {
    if (!f.padding || f.length === 0) continue;
    const end = f.offset + f.length;
    for (let p = Math.floor(f.offset / meta.pieceLength); p * meta.pieceLength < end; p++) {
      const from = Math.max(f.offset, p * meta.pieceLength);
      const to = Math.min(end, (p + 1) * meta.pieceLength);
      out.set(p, (out.get(p) ?? 0) + (to - from));
    }
  }
  return out;
}

/** Padding bytes inside the pieces `pieces` has (all pieces when undefined). */
export function paddingIn(padding: ReadonlyMap<number, number>, pieces?: { has(index: number): boolean }): number {
  let bytes = 0;
  for (const [piece, n] of padding) if (pieces === undefined || pieces.has(piece)) bytes += n;
  return bytes;
}

/** What the torrent's files hold: its length without BEP 47 padding. */
export function filesLength(meta: Metainfo): number {
  let n = 0;
  for (const f of meta.files) if (!f.padding) n += f.length;
  return n;
}
