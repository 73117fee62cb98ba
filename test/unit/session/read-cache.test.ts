import { describe, expect, it } from 'vitest';
import { PieceReadCache } from '../../../src/session/read-cache.js';

const PIECE_BYTES = 100;

/** A loader that records every call and returns a piece filled with its index. */
function countingLoader(): { load: (index: number) => Promise<Buffer>; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    load: (index) => {
      calls.push(index);
      return Promise.resolve(Buffer.alloc(PIECE_BYTES, index));
    },
  };
}

describe('PieceReadCache', () => {
  it('loads a piece once and serves later gets from memory', async () => {
    const { load, calls } = countingLoader();
    const cache = new PieceReadCache(load, 10 * PIECE_BYTES);
    const first = await cache.get(4);
    const again = await cache.get(4);
    expect(first[0]).toBe(4);
    expect(again).toBe(first);
    expect(calls).toEqual([4]);
  });

  it('evicts the least recently used piece when over the byte budget', async () => {
    const { load, calls } = countingLoader();
    const cache = new PieceReadCache(load, 3 * PIECE_BYTES);
    await cache.get(0);
    await cache.get(1);
    await cache.get(2);
    await cache.get(0); // touch: 1 is now the oldest
    await cache.get(3); // 400 bytes > 300: evicts 1
    expect(calls).toEqual([0, 1, 2, 3]);
    await cache.get(0);
    await cache.get(2);
    await cache.get(3);
    expect(calls).toEqual([0, 1, 2, 3]);
    await cache.get(1);
    expect(calls).toEqual([0, 1, 2, 3, 1]);
  });

  it('counts bytes, not pieces', async () => {
    const calls: number[] = [];
    const cache = new PieceReadCache(async (index) => {
      calls.push(index);
      return Buffer.alloc(index === 9 ? 250 : 50);
    }, 300);
    await cache.get(0);
    await cache.get(1);
    await cache.get(9); // 350 bytes: 0 goes
    await cache.get(1);
    await cache.get(9);
    expect(calls).toEqual([0, 1, 9]);
    await cache.get(0); // 350 bytes: 1 goes (9 was used after it), 9 + 0 = 300 stay
    await cache.get(0);
    await cache.get(9);
    expect(calls).toEqual([0, 1, 9, 0]);
    await cache.get(1);
    expect(calls).toEqual([0, 1, 9, 0, 1]);
  });

  it('concurrent gets of one piece share one load', async () => {
    let release!: (b: Buffer) => void;
    let loads = 0;
    const cache = new PieceReadCache(() => {
      loads++;
      return new Promise<Buffer>((resolve) => (release = resolve));
    }, 1000);
    const gets = [cache.get(7), cache.get(7), cache.get(7)];
    await Promise.resolve();
    expect(loads).toBe(1);
    const piece = Buffer.from('piece seven');
    release(piece);
    const results = await Promise.all(gets);
    for (const r of results) expect(r).toBe(piece);
    await cache.get(7);
    expect(loads).toBe(1);
  });

  it('a failed load is not cached and can be retried', async () => {
    let attempts = 0;
    const cache = new PieceReadCache(async (index) => {
      attempts++;
      if (attempts === 1) throw new Error('EIO');
      return Buffer.alloc(10, index);
    }, 1000);
    const both = await Promise.allSettled([cache.get(2), cache.get(2)]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(attempts).toBe(1);
    const ok = await cache.get(2);
    expect(ok[0]).toBe(2);
    expect(attempts).toBe(2);
    await cache.get(2);
    expect(attempts).toBe(2);
  });

  it('put inserts a verified piece; an oversized one is ignored', async () => {
    const { load, calls } = countingLoader();
    const cache = new PieceReadCache(load, 3 * PIECE_BYTES);
    const fresh = Buffer.alloc(PIECE_BYTES, 0xaa);
    cache.put(5, fresh);
    expect(await cache.get(5)).toBe(fresh);
    cache.put(6, Buffer.alloc(3 * PIECE_BYTES + 1));
    const six = await cache.get(6);
    expect(six).toHaveLength(PIECE_BYTES);
    expect(calls).toEqual([6]);
    expect(await cache.get(5)).toBe(fresh); // the oversized put evicted nothing
    expect(calls).toEqual([6]);
  });

  it('replacing a piece does not count its bytes twice', async () => {
    const { load, calls } = countingLoader();
    const cache = new PieceReadCache(load, 3 * PIECE_BYTES);
    for (let i = 0; i < 5; i++) cache.put(0, Buffer.alloc(PIECE_BYTES));
    cache.put(1, Buffer.alloc(PIECE_BYTES));
    cache.put(2, Buffer.alloc(PIECE_BYTES));
    await cache.get(0);
    await cache.get(1);
    await cache.get(2);
    expect(calls).toEqual([]);
  });

  it('clear empties the cache', async () => {
    const { load, calls } = countingLoader();
    const cache = new PieceReadCache(load, 3 * PIECE_BYTES);
    await cache.get(1);
    cache.clear();
    await cache.get(1);
    expect(calls).toEqual([1, 1]);
  });

  describe('buffer recycling', () => {
    /** A cache whose released buffers are recorded in order. */
    function recyclingCache(maxPieces: number): { cache: PieceReadCache; released: Buffer[]; calls: number[] } {
      const { load, calls } = countingLoader();
      const released: Buffer[] = [];
      const cache = new PieceReadCache(load, maxPieces * PIECE_BYTES, (b) => released.push(b));
      return { cache, released, calls };
    }

    it('an evicted buffer nobody pins goes back at once', async () => {
      const { cache, released } = recyclingCache(2);
      const zero = await cache.get(0);
      await cache.get(1);
      expect(released).toEqual([]);
      await cache.get(2); // evicts 0
      expect(released).toHaveLength(1);
      expect(released[0]).toBe(zero);
    });

    it('a pinned buffer is released only when its last pin goes, never while a send points into it', async () => {
      const { cache, released, calls } = recyclingCache(1);
      const zero = await cache.get(0);
      cache.pin(zero);
      cache.pin(zero); // two blocks of it queued on a socket
      await cache.get(1); // evicts 0 while it is pinned
      expect(released).toEqual([]);
      expect(calls).toEqual([0, 1]);
      expect(await cache.get(0)).not.toBe(zero); // evicted: a fresh read, the pinned bytes are untouched
      cache.unpin(zero);
      expect(released).not.toContain(zero);
      cache.unpin(zero);
      expect(released).toContain(zero);
      expect(released.filter((b) => b === zero)).toHaveLength(1);
    });

    it('unpinning a buffer that is still cached keeps it cached and unreleased', async () => {
      const { cache, released, calls } = recyclingCache(2);
      const zero = await cache.get(0);
      cache.pin(zero);
      cache.unpin(zero);
      expect(released).toEqual([]);
      expect(await cache.get(0)).toBe(zero);
      expect(calls).toEqual([0]);
    });

    it('clear releases unpinned buffers now and pinned ones later', async () => {
      const { cache, released } = recyclingCache(4);
      const a = await cache.get(0);
      const b = await cache.get(1);
      cache.pin(b);
      cache.clear();
      expect(released).toEqual([a]);
      expect(cache.bytes).toBe(0);
      cache.unpin(b);
      expect(released).toEqual([a, b]);
    });

    it('replacing an entry releases the old buffer; an oversized put releases the new one', async () => {
      const { cache, released } = recyclingCache(2);
      const old = await cache.get(3);
      const fresh = Buffer.alloc(PIECE_BYTES, 9);
      cache.put(3, fresh);
      expect(released).toEqual([old]);
      const huge = Buffer.alloc(3 * PIECE_BYTES);
      cache.put(4, huge);
      expect(released).toEqual([old, huge]);
      expect(await cache.get(3)).toBe(fresh);
    });
  });
});
