/**
 * How much of each file a set of verified pieces covers (`tt verify`): a
 * file's bytes that lie in verified pieces. A file is complete when all of
 * its bytes do; a zero-length file always is. Also where BEP 47 padding and
 * unselected files lie, so that sizes shown to people count the wanted files'
 * bytes only (piece math keeps counting them: they are hashed). Pure: Metainfo + Bitfield in,
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

/**
 * Bytes in each piece that people are not shown (most pieces hold none):
 * BEP 47 padding and, with a selection, the files not selected. Their share
 * of a wanted piece is fetched and hashed with it, but it is not what was
 * asked for, so progress and summaries leave it out (a 10,000-byte file in a
 * 256 KiB piece shows as 9.77 KiB, not 256 KiB).
 */
export function hiddenByPiece(meta: Metainfo, selection?: { isSelected(fileIndex: number): boolean }): ReadonlyMap<number, number> {
  const out = new Map<number, number>();
  meta.files.forEach((f, fileIndex) => {
    if (f.length === 0 || (!f.padding && (selection === undefined || selection.isSelected(fileIndex)))) return;
    const end = f.offset + f.length;
    for (let p = Math.floor(f.offset / meta.pieceLength); p * meta.pieceLength < end; p++) {
      const from = Math.max(f.offset, p * meta.pieceLength);
      const to = Math.min(end, (p + 1) * meta.pieceLength);
      out.set(p, (out.get(p) ?? 0) + (to - from));
    }
  });
  return out;
}

/** The bytes of `byPiece` inside the pieces `pieces` has (all pieces when undefined). */
export function bytesIn(byPiece: ReadonlyMap<number, number>, pieces?: { has(index: number): boolean }): number {
  let bytes = 0;
  for (const [piece, n] of byPiece) if (pieces === undefined || pieces.has(piece)) bytes += n;
  return bytes;
}

/** What the torrent's files hold: its length without BEP 47 padding. */
export function filesLength(meta: Metainfo): number {
  let n = 0;
  for (const f of meta.files) if (!f.padding) n += f.length;
  return n;
}
