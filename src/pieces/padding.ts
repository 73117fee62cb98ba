/**
 * BEP 47 padding inside pieces: which 16 KiB blocks lie wholly in padding
 * files. Padding is zeros by definition, so those blocks are never asked of
 * anyone: the piece buffer holds zeros there and the piece is hashed as
 * usual. libtorrent does the same; without it a hybrid torrent of small
 * files with 4 MiB pieces cost 420 times its files' size on the wire.
 * Pieces that are nothing but padding (only a crafted torrent has them) are
 * left alone: they are fetched like any other. Pure.
 */
import { BLOCK_SIZE } from '../core/geometry.js';

export interface PaddedFile {
  readonly offset: number;
  readonly length: number;
  readonly padding?: boolean | undefined;
}

/** For each piece holding whole blocks of padding (and some data): those block numbers, ascending. */
export function paddingBlocks(files: readonly PaddedFile[], pieceLength: number, totalLength: number): Map<number, number[]> {
  const sets = new Map<number, Set<number>>();
  for (const f of files) {
    if (!f.padding || f.length === 0) continue;
    const end = Math.min(f.offset + f.length, totalLength);
    for (let index = Math.floor(f.offset / pieceLength); index * pieceLength < end; index++) {
      const pieceStart = index * pieceLength;
      const pieceEnd = Math.min(pieceStart + pieceLength, totalLength);
      let blocks = sets.get(index);
      // whole blocks of this piece inside [f.offset, end)
      const first = Math.ceil((Math.max(f.offset, pieceStart) - pieceStart) / BLOCK_SIZE);
      for (let b = first; pieceStart + b * BLOCK_SIZE < pieceEnd; b++) {
        const blockEnd = Math.min(pieceStart + (b + 1) * BLOCK_SIZE, pieceEnd);
        if (blockEnd > end) break;
        if (!blocks) sets.set(index, (blocks = new Set()));
        blocks.add(b);
      }
    }
  }
  const out = new Map<number, number[]>();
  for (const [index, blocks] of sets) {
    const pieceSize = Math.min(pieceLength, totalLength - index * pieceLength);
    if (blocks.size >= Math.ceil(pieceSize / BLOCK_SIZE)) continue; // all padding: fetched as usual
    out.set(index, [...blocks].sort((a, b) => a - b));
  }
  return out;
}
