/**
 * metainfo/completion.ts: each file's bytes inside verified pieces, against a
 * byte-by-byte count on random layouts (files spanning pieces, pieces
 * spanning files, zero-length files, a short last piece).
 */
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { bytesIn, fileCompletion, filesLength, hiddenByPiece } from '../../../src/metainfo/completion.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
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
    expect([...hiddenByPiece(meta)]).toEqual([[0, 6], [1, 6]]);
    expect(filesLength(meta)).toBe(21);
    const pad = hiddenByPiece(meta);
    expect(bytesIn(pad)).toBe(12);
    const have = new Bitfield(3);
    have.set(1);
    expect(bytesIn(pad, have)).toBe(6);
    expect(bytesIn(pad, new Bitfield(3))).toBe(0);
  });

  it('a pad file across pieces (a hostile layout) is split by piece, byte for byte', () => {
    const meta = padded([[3], [20, 'p'], [5], [0, 'p']], 8); // pad [3, 23): 5 in piece 0, 8 in 1, 7 in 2
    expect([...hiddenByPiece(meta)]).toEqual([[0, 5], [1, 8], [2, 7]]);
    expect(filesLength(meta)).toBe(8);
    expect(bytesIn(hiddenByPiece(meta))).toBe(20);
  });

  it('no padding: nothing', () => {
    const meta = layout([10, 0, 25], 8);
    expect(hiddenByPiece(meta).size).toBe(0);
    expect(filesLength(meta)).toBe(meta.totalLength);
  });
});

describe('hiddenByPiece with a selection: the unselected files\' shares of the wanted pieces', () => {
  it('a 10-byte file in a 16-byte piece shows as 10 bytes, not 16; padding stays hidden too', () => {
    // pieces of 16: [a 10][b 6 | c 4][pad 12][d 5]  -> piece 0 = a + b[0,6), piece 1 = c + pad, piece 2 = d
    const meta = layout([10, 6, 4, 12, 5], 16);
    Object.assign(meta.files[3]!, { padding: true });
    const onlyA = new FileSelection(meta, [true, false, false, false, false]);
    expect([...hiddenByPiece(meta, onlyA)]).toEqual([[0, 6], [1, 16], [2, 5]]);
    // the wanted piece (0) holds 16 bytes, 10 of them shown
    expect(onlyA.wantedBytes - bytesIn(hiddenByPiece(meta, onlyA), onlyA.wanted)).toBe(10);
    const bAndD = new FileSelection(meta, [false, true, false, false, true]);
    const hidden = hiddenByPiece(meta, bAndD);
    expect(bAndD.wantedBytes - bytesIn(hidden, bAndD.wanted)).toBe(6 + 5);
    // every file selected: only the padding is hidden, as without a selection
    const all = FileSelection.all(meta);
    expect([...hiddenByPiece(meta, all)]).toEqual([...hiddenByPiece(meta)]);
    expect([...hiddenByPiece(meta)]).toEqual([[1, 12]]);
  });
});
