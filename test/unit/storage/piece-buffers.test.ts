import { describe, expect, it } from 'vitest';
import { DIRECT_ALIGN, PieceBuffers, inAlignedStore, isAligned } from '../../../src/storage/piece-buffers.js';

const PIECE = 256 * 1024;

describe('PieceBuffers', () => {
  it('hands out page-aligned, non-overlapping piece buffers from shared chunks', () => {
    const pool = new PieceBuffers(PIECE);
    const bufs = Array.from({ length: 20 }, () => pool.take(PIECE)); // more than one 4 MiB chunk
    for (const b of bufs) {
      expect(b.length).toBe(PIECE);
      expect(isAligned(b)).toBe(true);
      expect(b.byteOffset % DIRECT_ALIGN).toBe(0);
    }
    bufs.forEach((b, i) => b.fill(i));
    bufs.forEach((b, i) => expect(b.every((x) => x === i)).toBe(true)); // no buffer wrote into another
    expect(new Set(bufs).size).toBe(20);
    expect(pool.chunkBytes).toBe(2 * 4 * 1024 * 1024);
  });

  it('reuses a given-back buffer before mapping more memory', () => {
    const pool = new PieceBuffers(PIECE);
    const first = Array.from({ length: 16 }, () => pool.take(PIECE));
    const mapped = pool.chunkBytes;
    pool.give(first[3]!);
    expect(pool.take(PIECE)).toBe(first[3]);
    expect(pool.chunkBytes).toBe(mapped);
  });

  it('other sizes (the last piece) are plain buffers the pool does not keep', () => {
    const pool = new PieceBuffers(PIECE);
    const last = pool.take(1000);
    expect(last.length).toBe(1000);
    expect(inAlignedStore(last)).toBe(false);
    pool.give(last);
    expect(pool.freeCount).toBe(0);
  });

  it('gives a wholly free chunk back once more than maxFreeBytes sit idle', () => {
    const pool = new PieceBuffers(PIECE, { maxFreeBytes: 4 * 1024 * 1024 });
    const bufs = Array.from({ length: 48 }, () => pool.take(PIECE)); // three chunks
    expect(pool.chunkBytes).toBe(12 * 1024 * 1024);
    for (const b of bufs) pool.give(b);
    expect(pool.chunkBytes).toBe(4 * 1024 * 1024); // keeps one chunk's worth
    expect(pool.freeCount).toBe(16);
    // what is left still works
    const again = Array.from({ length: 16 }, () => pool.take(PIECE));
    expect(new Set(again).size).toBe(16);
    expect(pool.chunkBytes).toBe(4 * 1024 * 1024);
  });

  it('keeps one free buffer of a piece larger than maxFreeBytes: the next piece reuses it instead of mapping another', () => {
    const big = 32 * 1024 * 1024;
    const pool = new PieceBuffers(big);
    const first = pool.take(big);
    pool.give(first);
    expect(pool.freeCount).toBe(1);
    expect(pool.take(big)).toBe(first);
    expect(pool.chunkBytes).toBe(big);
    const second = pool.take(big);
    pool.give(first);
    pool.give(second); // two free: over maxFreeBytes and over one piece, so one goes
    expect(pool.freeCount).toBe(1);
    expect(pool.chunkBytes).toBe(big);
  });

  it('counts the bytes handed out and not given back, and their peak; a buffer given twice, or not its own, is not taken back again', () => {
    const pool = new PieceBuffers(PIECE);
    const a = pool.take(PIECE);
    const b = pool.take(PIECE);
    const last = pool.take(1000);
    expect(pool.heldBytes).toBe(2 * PIECE + 1000);
    pool.give(a);
    pool.give(a);
    pool.give(Buffer.alloc(PIECE));
    expect(pool.heldBytes).toBe(PIECE + 1000);
    expect(pool.freeCount).toBe(15); // the chunk's 14 never taken, and a once: never handed out twice
    pool.give(last);
    pool.give(b);
    expect(pool.heldBytes).toBe(0);
    expect(pool.peakHeldBytes).toBe(2 * PIECE + 1000);
    pool.take(PIECE);
    expect(pool.heldBytes).toBe(PIECE);
    expect(pool.peakHeldBytes).toBe(2 * PIECE + 1000);
  });

  it('falls back to plain buffers when alignment is off or impossible (piece not a multiple of 4096)', () => {
    for (const pool of [new PieceBuffers(PIECE, { aligned: false }), new PieceBuffers(5000)]) {
      const b = pool.take(pool.pieceLength);
      expect(inAlignedStore(b)).toBe(false);
      expect(pool.chunkBytes).toBe(0);
      pool.give(b);
      expect(pool.take(pool.pieceLength)).toBe(b); // still reused
    }
  });
});
