/**
 * How much of each file a set of verified pieces covers (`tt verify`): a
 * file's bytes that lie in verified pieces. A file is complete when all of
 * its bytes do; a zero-length file always is. Pure: Metainfo + Bitfield in,
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
