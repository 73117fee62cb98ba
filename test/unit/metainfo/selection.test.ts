/**
 * metainfo/selection.ts: the --select syntax, file numbering (padding not
 * counted, as tt info shows), which pieces a selection wants (against brute
 * force on random layouts), and the edge ranges a part file may hold.
 */
import { describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import type { Metainfo, TorrentFile } from '../../../src/metainfo/metainfo.js';
import { FileSelection, edgeRanges, isPartFileName, numberedFiles, parseFileNumbers, partFileName, selectFiles } from '../../../src/metainfo/selection.js';
import { mulberry32 } from '../../helpers/prng.js';

/** A Metainfo with just what selection.ts reads: files laid end to end. */
function layout(sizes: readonly number[], pieceLength: number, padding: readonly number[] = []): Metainfo {
  let offset = 0;
  const files: TorrentFile[] = sizes.map((length, i) => {
    const f = { path: ['t', `f${i}`], length, offset, padding: padding.includes(i) };
    offset += length;
    return f;
  });
  return {
    name: 't',
    infoHashHex: 'ab'.repeat(20),
    pieceLength,
    totalLength: offset,
    pieceCount: Math.ceil(offset / pieceLength),
    files,
  } as unknown as Metainfo;
}

describe('parseFileNumbers', () => {
  it('reads numbers, ranges and spaces', () => {
    expect(parseFileNumbers('3')).toEqual([[3, 3]]);
    expect(parseFileNumbers('1,4-6')).toEqual([
      [1, 1],
      [4, 6],
    ]);
    expect(parseFileNumbers(' 2 , 7 - 9 ,2')).toEqual([
      [2, 2],
      [7, 9],
      [2, 2],
    ]);
  });

  it.each([
    ['', /is not a file number/],
    ['0', /start at 1/],
    ['0-3', /start at 1/],
    ['5-2', /empty range/],
    ['abc', /'abc' is not a file number/],
    ['1,,2', /is not a file number/],
    ['1-', /is not a file number/],
    ['-1', /is not a file number/],
    ['1.5', /is not a file number/],
    ['1e3', /is not a file number/],
    ['9999999999', /is not a file number/], // over 9 digits: never a real file number, never a huge loop
    ['1-2-3', /is not a file number/],
  ])('refuses %j', (text, reason) => {
    expect(() => parseFileNumbers(text)).toThrow(reason);
  });

  it('refuses an absurdly long list in one line without parsing it', () => {
    expect(() => parseFileNumbers('1,'.repeat(100_000))).toThrow(/longer than/);
  });
});

describe('selectFiles', () => {
  it('numbers files as tt info does: padding files are skipped', () => {
    const meta = layout([10, 6, 20, 12, 5], 16, [1, 3]);
    expect(numberedFiles(meta)).toEqual([0, 2, 4]);
    const sel = selectFiles(meta, [[2, 2]]); // the second numbered file is meta.files[2]
    expect([0, 1, 2, 3, 4].map((i) => sel.isSelected(i))).toEqual([false, false, true, false, false]);
    expect(sel.selectedCount).toBe(1);
    expect(sel.fileCount).toBe(3);
  });

  it('a number past the last file is a usage error naming the file count', () => {
    const meta = layout([10, 6, 20], 16, [1]);
    const err = (() => {
      try {
        selectFiles(meta, [[1, 3]]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TtError);
    expect((err as TtError).code).toBe('USAGE');
    expect((err as TtError).message).toMatch(/no file 3: t has 2 files/);
    expect(() => selectFiles(meta, [[4, 4]])).toThrow(/no file 4/);
  });

  it('padding never counts as selected, even when flagged', () => {
    const meta = layout([10, 6, 20], 16, [1]);
    const sel = new FileSelection(meta, [false, true, false]);
    expect(sel.isSelected(1)).toBe(false);
    expect(sel.wanted.count).toBe(0);
    expect(sel.wantedBytes).toBe(0);
  });

  it('an empty selected file wants no piece', () => {
    const meta = layout([16, 0, 16], 16);
    const sel = new FileSelection(meta, [false, true, false]);
    expect(sel.selectedCount).toBe(1);
    expect(sel.wanted.count).toBe(0);
  });

  it('tells part file names apart from anything else', () => {
    expect(isPartFileName(`.${'ab'.repeat(20)}.tt-parts`)).toBe(true);
    for (const other of [`.${'ab'.repeat(20)}.parts`, `${'ab'.repeat(20)}.tt-parts`, `.${'ab'.repeat(19)}.tt-parts`, `.${'AB'.repeat(20)}.tt-parts`, 'x.tt-parts', '']) {
      expect(isPartFileName(other), other).toBe(false);
    }
  });

  it('names the part file after the info hash, as libtorrent does', () => {
    const meta = layout([1], 16);
    expect(partFileName(meta)).toBe(`.${'ab'.repeat(20)}.tt-parts`);
    expect(new FileSelection(meta, [true]).partFileName).toBe(partFileName(meta));
  });
});

describe('wanted pieces', () => {
  it('matches brute force over random layouts and selections', () => {
    const random = mulberry32(7);
    for (let round = 0; round < 300; round++) {
      const pieceLength = [16, 32, 64][Math.floor(random() * 3)]!;
      const sizes: number[] = Array.from({ length: 1 + Math.floor(random() * 8) }, (): number => (random() < 0.15 ? 0 : Math.floor(random() * pieceLength * 4)));
      if (!sizes.some((s) => s > 0)) sizes.push(1);
      const padding = sizes.map((_, i) => i).filter(() => random() < 0.1);
      const meta = layout(sizes, pieceLength, padding);
      const flags = sizes.map(() => random() < 0.4);
      const sel = new FileSelection(meta, flags);
      let bytes = 0;
      for (let p = 0; p < meta.pieceCount; p++) {
        const start = p * pieceLength;
        const end = Math.min(meta.totalLength, start + pieceLength);
        const want = meta.files.some((f, i) => flags[i] && !f.padding && f.length > 0 && f.offset < end && f.offset + f.length > start);
        expect(sel.wanted.has(p), `round ${round} piece ${p}`).toBe(want);
        if (want) bytes += end - start;
      }
      expect(sel.wantedBytes, `round ${round}`).toBe(bytes);
    }
  });
});

describe('edgeRanges', () => {
  const file = (offset: number, length: number): TorrentFile => ({ path: ['x'], offset, length, padding: false });

  it('is the part of the first piece and the part of the last piece', () => {
    expect(edgeRanges(file(10, 100), 16)).toEqual([
      [10, 16],
      [96, 110],
    ]);
  });

  it('is one range when the file lies in one piece or two adjacent ones', () => {
    expect(edgeRanges(file(3, 5), 16)).toEqual([[3, 8]]);
    expect(edgeRanges(file(10, 20), 16)).toEqual([
      [10, 16],
      [16, 30],
    ]);
    expect(edgeRanges(file(0, 16), 16)).toEqual([[0, 16]]);
  });

  it('is nothing for an empty file', () => {
    expect(edgeRanges(file(5, 0), 16)).toEqual([]);
  });

  it('covers every byte a shared piece can hold (brute force)', () => {
    const random = mulberry32(11);
    for (let round = 0; round < 500; round++) {
      const pl = 16;
      const f = file(Math.floor(random() * 100), 1 + Math.floor(random() * 100));
      const ranges = edgeRanges(f, pl);
      for (let b = f.offset; b < f.offset + f.length; b++) {
        const piece = Math.floor(b / pl);
        // the piece holds bytes of another file when the file does not cover all of it
        const shared = f.offset > piece * pl || f.offset + f.length < (piece + 1) * pl;
        const inRange = ranges.some(([from, to]) => b >= from && b < to);
        if (shared) expect(inRange, `round ${round} byte ${b}`).toBe(true);
        // and nothing outside the file
        for (const [from, to] of ranges) expect(from >= f.offset && to <= f.offset + f.length).toBe(true);
      }
    }
  });
});
