/**
 * metainfo/completion.ts: each file's bytes inside verified pieces, against a
 * byte-by-byte count on random layouts (files spanning pieces, pieces
 * spanning files, zero-length files, a short last piece).
 */
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { fileCompletion, filesLength, paddingByPiece, paddingIn } from '../../../src/metainfo/completion.js';
import type { Metainfo, TorrentFile } from '../../../src/metainfo/metainfo.js';
import { mulberry32 } from '../../helpers/prng.js';

function layout(sizes: readonly number[], pieceLength: number): Metainfo {
  let offset = 0;
  const files: TorrentFile[] = sizes.map((length, i) => {
    const f = { path: ['t', `f${i}`], length, offset, padding: false };
    offset += length;
    return f;
  });
  return { name: 't', pieceLength, totalLength: offset, pieceCount: Math.ceil(offset / pieceLength), files } as unknown as Metainfo;
}

describe('fileCompletion', () => {
  it('counts the bytes of each file that lie in verified pieces', () => {
    const meta = layout([10, 0, 25, 5], 8); // pieces [0,8) [8,16) [16,24) [24,32) [32,40): 40 bytes
    const have = new Bitfield(5);
    have.set(1);
    have.set(4);
    expect(fileCompletion(meta, have).map((c) => c.verifiedBytes)).toEqual([2, 0, 6 + 3, 5]); // f2 is [10, 35): 6 bytes in piece 1, 3 in piece 4
    expect(fileCompletion(meta, Bitfield.full(5)).map((c) => c.verifiedBytes)).toEqual([10, 0, 25, 5]);
    expect(fileCompletion(meta, new Bitfield(5)).map((c) => c.verifiedBytes)).toEqual([0, 0, 0, 0]);
  });

  it('agrees with a byte-by-byte count on random layouts', () => {
    const random = mulberry32(5);
    for (let round = 0; round < 200; round++) {
      const sizes: number[] = Array.from({ length: 1 + Math.floor(random() * 6) }, () => (random() < 0.2 ? 0 : Math.floor(random() * 100)));
      if (!sizes.some((s) => s > 0)) sizes.push(1);
      const meta = layout(sizes, 1 + Math.floor(random() * 40));
      const have = new Bitfield(meta.pieceCount);
      for (let i = 0; i < meta.pieceCount; i++) if (random() < 0.5) have.set(i);
      const expected = meta.files.map((f) => {
        let n = 0;
        for (let b = f.offset; b < f.offset + f.length; b++) if (have.has(Math.floor(b / meta.pieceLength))) n++;
        return n;
      });
      expect(fileCompletion(meta, have).map((c) => c.verifiedBytes), JSON.stringify({ sizes, pl: meta.pieceLength })).toEqual(expected);
    }
  });
});

describe('padding (BEP 47): where it lies, and the files\' size without it', () => {
  /** Files of `sizes`, those marked 'p' padding, in pieces of `pieceLength`. */
  function padded(entries: readonly [number, 'p'?][], pieceLength: number): Metainfo {
    const meta = layout(entries.map(([n]) => n), pieceLength);
    entries.forEach(([, p], i) => Object.assign(meta.files[i]!, { padding: p === 'p' }));
    return meta;
  }

  it('libtorrent-style pads fill the tail of one piece each', () => {
    const meta = padded([[10], [6, 'p'], [10], [6, 'p'], [1]], 16); // pieces [0,16) [16,32) [32,33)
    expect([...paddingByPiece(meta)]).toEqual([[0, 6], [1, 6]]);
    expect(filesLength(meta)).toBe(21);
    const pad = paddingByPiece(meta);
    expect(paddingIn(pad)).toBe(12);
    const have = new Bitfield(3);
    have.set(1);
    expect(paddingIn(pad, have)).toBe(6);
    expect(paddingIn(pad, new Bitfield(3))).toBe(0);
  });

  it('a pad file across pieces (a hostile layout) is split by piece, byte for byte', () => {
    const meta = padded([[3], [20, 'p'], [5], [0, 'p']], 8); // pad [3, 23): 5 in piece 0, 8 in 1, 7 in 2
    expect([...paddingByPiece(meta)]).toEqual([[0, 5], [1, 8], [2, 7]]);
    expect(filesLength(meta)).toBe(8);
    expect(paddingIn(paddingByPiece(meta))).toBe(20);
  });

  it('no padding: nothing', () => {
    const meta = layout([10, 0, 25], 8);
    expect(paddingByPiece(meta).size).toBe(0);
    expect(filesLength(meta)).toBe(meta.totalLength);
  });
});
