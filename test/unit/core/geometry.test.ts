import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, PieceGeometry } from '../../../src/core/geometry.js';

// 3 pieces of 64 KiB except the last: 20,000 bytes = one full block + a 3,616-byte block.
const PIECE_LENGTH = 4 * BLOCK_SIZE;
const LAST_PIECE = 20_000;
const g = new PieceGeometry(PIECE_LENGTH, 2 * PIECE_LENGTH + LAST_PIECE);

describe('PieceGeometry', () => {
  it('has a short last piece and a short last block', () => {
    expect(BLOCK_SIZE).toBe(16384);
    expect(g.pieceCount).toBe(3);
    expect(g.lastPieceLength).toBe(LAST_PIECE);
    expect(g.pieceSize(0)).toBe(PIECE_LENGTH);
    expect(g.pieceSize(2)).toBe(LAST_PIECE);
    expect(g.pieceOffset(2)).toBe(2 * PIECE_LENGTH);
    expect(g.blockCount(1)).toBe(4);
    expect(g.blockCount(2)).toBe(2);
    expect(g.blockSize(1, 3)).toBe(BLOCK_SIZE);
    expect(g.blockSize(2, 0)).toBe(BLOCK_SIZE);
    expect(g.blockSize(2, 1)).toBe(LAST_PIECE - BLOCK_SIZE);
  });

  it('an exact multiple has a full last piece; an empty torrent has none', () => {
    const exact = new PieceGeometry(PIECE_LENGTH, 3 * PIECE_LENGTH);
    expect(exact.pieceCount).toBe(3);
    expect(exact.lastPieceLength).toBe(PIECE_LENGTH);
    expect(exact.blockCount(2)).toBe(4);
    const tiny = new PieceGeometry(PIECE_LENGTH, 1);
    expect(tiny.pieceCount).toBe(1);
    expect(tiny.blockCount(0)).toBe(1);
    expect(tiny.blockSize(0, 0)).toBe(1);
    const empty = new PieceGeometry(PIECE_LENGTH, 0);
    expect(empty.pieceCount).toBe(0);
    expect(empty.lastPieceLength).toBe(0);
    expect(empty.isValidIndex(0)).toBe(false);
  });

  it('a piece smaller than a block is one short block', () => {
    const small = new PieceGeometry(1000, 2500);
    expect(small.pieceCount).toBe(3);
    expect(small.blockCount(0)).toBe(1);
    expect(small.blockSize(0, 0)).toBe(1000);
    expect(small.blockSize(2, 0)).toBe(500);
  });

  it('rejects non-integer or non-positive lengths', () => {
    expect(() => new PieceGeometry(0, 10)).toThrow(RangeError);
    expect(() => new PieceGeometry(-1, 10)).toThrow(RangeError);
    expect(() => new PieceGeometry(1.5, 10)).toThrow(RangeError);
    expect(() => new PieceGeometry(16, -1)).toThrow(RangeError);
    expect(() => new PieceGeometry(16, Number.NaN)).toThrow(RangeError);
  });

  it('isValidIndex accepts 0..pieceCount-1 integers only', () => {
    expect(g.isValidIndex(0)).toBe(true);
    expect(g.isValidIndex(2)).toBe(true);
    expect(g.isValidIndex(3)).toBe(false);
    expect(g.isValidIndex(-1)).toBe(false);
    expect(g.isValidIndex(0.5)).toBe(false);
    expect(g.isValidIndex(Number.NaN)).toBe(false);
  });

  it('isValidRequest: 1..16 KiB inside the piece, any begin', () => {
    expect(g.isValidRequest(0, 0, BLOCK_SIZE)).toBe(true);
    expect(g.isValidRequest(0, PIECE_LENGTH - BLOCK_SIZE, BLOCK_SIZE)).toBe(true); // ends exactly at the piece end
    expect(g.isValidRequest(0, PIECE_LENGTH - BLOCK_SIZE + 1, BLOCK_SIZE)).toBe(false); // one byte past
    expect(g.isValidRequest(0, 1, 1)).toBe(true); // unaligned but inside: allowed to serve
    expect(g.isValidRequest(0, 0, BLOCK_SIZE + 1)).toBe(false);
    expect(g.isValidRequest(0, 0, 0)).toBe(false);
    expect(g.isValidRequest(0, -1, 1)).toBe(false);
    expect(g.isValidRequest(0, 0.5, 1)).toBe(false);
    expect(g.isValidRequest(0, 0, 1.5)).toBe(false);
    expect(g.isValidRequest(3, 0, 1)).toBe(false);
    expect(g.isValidRequest(-1, 0, 1)).toBe(false);
    // the short last piece
    expect(g.isValidRequest(2, BLOCK_SIZE, LAST_PIECE - BLOCK_SIZE)).toBe(true);
    expect(g.isValidRequest(2, BLOCK_SIZE, LAST_PIECE - BLOCK_SIZE + 1)).toBe(false);
    expect(g.isValidRequest(2, LAST_PIECE - 1, 1)).toBe(true);
    expect(g.isValidRequest(2, LAST_PIECE, 1)).toBe(false);
  });

  it('isExpectedBlock: aligned begin and the exact block size only', () => {
    expect(g.isExpectedBlock(0, 0, BLOCK_SIZE)).toBe(true);
    expect(g.isExpectedBlock(0, 3 * BLOCK_SIZE, BLOCK_SIZE)).toBe(true);
    expect(g.isExpectedBlock(0, 4 * BLOCK_SIZE, BLOCK_SIZE)).toBe(false); // block 4 does not exist
    expect(g.isExpectedBlock(0, 1, BLOCK_SIZE)).toBe(false); // misaligned
    expect(g.isExpectedBlock(0, 0, BLOCK_SIZE - 1)).toBe(false); // short
    expect(g.isExpectedBlock(0, 0, BLOCK_SIZE + 1)).toBe(false); // oversized
    expect(g.isExpectedBlock(0, -BLOCK_SIZE, BLOCK_SIZE)).toBe(false);
    expect(g.isExpectedBlock(3, 0, BLOCK_SIZE)).toBe(false);
    // last piece: full first block, short last block, nothing beyond
    expect(g.isExpectedBlock(2, 0, BLOCK_SIZE)).toBe(true);
    expect(g.isExpectedBlock(2, BLOCK_SIZE, LAST_PIECE - BLOCK_SIZE)).toBe(true);
    expect(g.isExpectedBlock(2, BLOCK_SIZE, BLOCK_SIZE)).toBe(false);
    expect(g.isExpectedBlock(2, 2 * BLOCK_SIZE, BLOCK_SIZE)).toBe(false);
  });
});
