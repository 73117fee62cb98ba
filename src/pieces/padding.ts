/**
 * BEP 47 padding inside pieces: which 16 KiB blocks lie wholly in padding
 * files. Padding is zeros by definition, so those blocks are never asked of
 * anyone: the piece buffer holds zeros there and the piece is hashed as
 * usual. libtorrent does the same; without it a hybrid torrent of small
 * files with 4 MiB pieces cost 420 times its files' size on the wire.
 * Pieces that are nothing but padding (only a crafted torrent has them) are
 * not here: their hash is proved at parse time and the session has them from
 * the start (metainfo/padding-pieces.ts). Only the first and last piece of
 * each run of padding are visited, so terabytes of padding cost nothing.
 * Pure.
 */
import { BLOCK_SIZE } from '../core/geometry.js';
import { paddingRuns } from '../metainfo/padding-pieces.js';

export interface PaddedFile {
  readonly offset: number;
  readonly length: number;
  readonly padding?: boolean | undefined;
}

/** For each piece holding whole blocks of padding (and some data): those block numbers, ascending. */
export function paddingBlocks(files: readonly PaddedFile[], pieceLength: number, totalLength: number): Map<number, number[]> {
  const sets = new Map<number, Set<number>>();
  // runs of consecutive padding files: a block split between two pad files is padding too
  for (const [start, runEnd] of paddingRuns(files)) {
    const end = Math.min(runEnd, totalLength);
    const firstPiece = Math.floor(start / pieceLength);
    const lastPiece = Math.ceil(end / pieceLength) - 1;
    // the pieces between the first and the last lie wholly in this run: all padding, so never listed
    for (const index of lastPiece > firstPiece ? [firstPiece, lastPiece] : [firstPiece]) {
      const pieceStart = index * pieceLength;
      const pieceEnd = Math.min(pieceStart + pieceLength, totalLength);
      if (start <= pieceStart && end >= pieceEnd) continue; // wholly padding: had from the start
      let blocks = sets.get(index);
      // whole blocks of this piece inside [start, end)
      const first = Math.ceil((Math.max(start, pieceStart) - pieceStart) / BLOCK_SIZE);
      for (let b = first; pieceStart + b * BLOCK_SIZE < pieceEnd; b++) {
        const blockEnd = Math.min(pieceStart + (b + 1) * BLOCK_SIZE, pieceEnd);
        if (blockEnd > end) break;
        if (!blocks) sets.set(index, (blocks = new Set()));
        blocks.add(b);
      }
    }
  }
  const out = new Map<number, number[]>();
  for (const [index, blocks] of sets) out.set(index, [...blocks].sort((a, b) => a - b));
  return out;
}
