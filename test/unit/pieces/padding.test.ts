/** pieces/padding.ts: the blocks of a piece that lie wholly in BEP 47 padding files. */
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { paddingBlocks } from '../../../src/pieces/padding.js';

const K = 1024;

describe('paddingBlocks', () => {
  it('a file of 10,000 B then padding to a 64 KiB piece: blocks 1-3 are padding, block 0 (data and the start of the padding) is not', () => {
    const files = [
      { offset: 0, length: 10_000 },
      { offset: 10_000, length: 64 * K - 10_000, padding: true },
      { offset: 64 * K, length: 5 },
    ];
    expect([...paddingBlocks(files, 64 * K, 64 * K + 5)]).toEqual([[0, [1, 2, 3]]]);
  });

  it('padding that ends inside a block leaves that block to be fetched; one starting on a block boundary takes it whole', () => {
    const files = [
      { offset: 0, length: BLOCK_SIZE },
      { offset: BLOCK_SIZE, length: BLOCK_SIZE + 100, padding: true }, // block 1 whole, 100 B of block 2
      { offset: 2 * BLOCK_SIZE + 100, length: 2 * BLOCK_SIZE - 100 },
    ];
    expect([...paddingBlocks(files, 4 * BLOCK_SIZE, 4 * BLOCK_SIZE)]).toEqual([[0, [1]]]);
  });

  it('padding across a piece boundary counts in both pieces; the short last piece is measured by its own size', () => {
    const files = [
      { offset: 0, length: 1_000 },
      { offset: 1_000, length: 2 * BLOCK_SIZE + 5_000, padding: true }, // up to 32 KiB + 6,000 B
      { offset: 2 * BLOCK_SIZE + 6_000, length: 10 },
    ];
    // piece 0 = 2 blocks: block 0 holds data, block 1 is padding; piece 1 starts at 32 KiB: 6,000 B of padding, then data
    expect([...paddingBlocks(files, 2 * BLOCK_SIZE, 2 * BLOCK_SIZE + 6_010)]).toEqual([[0, [1]]]);
  });

  it('a piece that is nothing but padding (only crafted torrents) is not listed: the session has it from the start', () => {
    const files = [
      { offset: 0, length: 100 },
      { offset: 100, length: 3 * 64 * K - 100, padding: true }, // pieces 1 and 2 all padding
      { offset: 3 * 64 * K, length: 100 },
    ];
    const got = paddingBlocks(files, 64 * K, 3 * 64 * K + 100);
    expect([...got.keys()]).toEqual([0]);
    expect(got.get(0)).toEqual([1, 2, 3]);
  });

  it('256 TiB of padding: only the pieces it shares with data are listed (the pieces between are never visited block by block)', () => {
    const P = 16 * 1024 * K;
    const pad = 256 * 1024 * 1024 * 1024 * K;
    const files = [
      { offset: 0, length: 10 },
      { offset: 10, length: pad, padding: true }, // ends 10 B into its last piece
      { offset: pad + 10, length: 10 },
    ];
    const got = paddingBlocks(files, P, pad + 20);
    expect([...got.keys()]).toEqual([0]);
    expect(got.get(0)).toHaveLength(P / BLOCK_SIZE - 1);
  });

  it('two padding files filling one piece between them: all padding, not listed', () => {
    const files = [
      { offset: 0, length: 64 * K },
      { offset: 64 * K, length: 20 * K, padding: true },
      { offset: 84 * K, length: 44 * K, padding: true },
      { offset: 128 * K, length: 5 },
    ];
    expect([...paddingBlocks(files, 64 * K, 128 * K + 5).keys()]).toEqual([]);
  });

  it('no padding files: nothing', () => {
    expect(paddingBlocks([{ offset: 0, length: 10 * K }], 16 * K, 10 * K).size).toBe(0);
  });
});
