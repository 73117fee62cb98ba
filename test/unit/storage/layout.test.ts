import { describe, expect, it } from 'vitest';
import { spansFor } from '../../../src/storage/layout.js';
import { filesOf } from './fixture.js';

describe('spansFor', () => {
  // files:   [0..10) [10..15) [15..15) empty [15..18) [18..40)
  const files = filesOf([10, 5, 0, 3, 22]);

  it('maps a range inside one file', () => {
    expect(spansFor(files, 2, 5)).toEqual([{ fileIndex: 0, fileOffset: 2, length: 5 }]);
    expect(spansFor(files, 20, 20)).toEqual([{ fileIndex: 4, fileOffset: 2, length: 20 }]);
  });

  it('maps a piece crossing into a second file', () => {
    expect(spansFor(files, 8, 4)).toEqual([
      { fileIndex: 0, fileOffset: 8, length: 2 },
      { fileIndex: 1, fileOffset: 0, length: 2 },
    ]);
  });

  it('maps a piece over three or more files, skipping the zero-length one', () => {
    expect(spansFor(files, 9, 12)).toEqual([
      { fileIndex: 0, fileOffset: 9, length: 1 },
      { fileIndex: 1, fileOffset: 0, length: 5 },
      { fileIndex: 3, fileOffset: 0, length: 3 },
      { fileIndex: 4, fileOffset: 0, length: 3 },
    ]);
  });

  it('starts at the right file when an empty file shares the offset', () => {
    expect(spansFor(files, 15, 2)).toEqual([{ fileIndex: 3, fileOffset: 0, length: 2 }]);
    expect(spansFor(files, 10, 1)).toEqual([{ fileIndex: 1, fileOffset: 0, length: 1 }]);
  });

  it('maps the last short piece to the end of the last file', () => {
    // piece length 16 -> pieces [0,16) [16,32) [32,40): the last one is 8 bytes
    expect(spansFor(files, 32, 8)).toEqual([{ fileIndex: 4, fileOffset: 14, length: 8 }]);
    expect(spansFor(files, 0, 40).reduce((a, s) => a + s.length, 0)).toBe(40);
  });

  it('handles leading and trailing empty files', () => {
    const f = filesOf([0, 4, 0, 0]);
    expect(spansFor(f, 0, 4)).toEqual([{ fileIndex: 1, fileOffset: 0, length: 4 }]);
    expect(spansFor(f, 4, 0)).toEqual([]);
  });

  it('refuses ranges outside the torrent', () => {
    expect(() => spansFor(files, 39, 2)).toThrow(RangeError);
    expect(() => spansFor(files, -1, 1)).toThrow(RangeError);
    expect(() => spansFor(files, 0.5, 1)).toThrow(RangeError);
  });

  it('agrees with a brute-force byte walk for every range of a messy layout', () => {
    const f = filesOf([3, 0, 1, 7, 0, 0, 2, 5]);
    const total = 18;
    const owner: [number, number][] = [];
    f.forEach((file, i) => {
      for (let b = 0; b < file.length; b++) owner.push([i, b]);
    });
    for (let off = 0; off <= total; off++) {
      for (let len = 0; off + len <= total; len++) {
        const flat: [number, number][] = [];
        for (const s of spansFor(f, off, len)) for (let b = 0; b < s.length; b++) flat.push([s.fileIndex, s.fileOffset + b]);
        expect(flat).toEqual(owner.slice(off, off + len));
      }
    }
  });
});
