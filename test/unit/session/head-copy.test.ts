import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { HEAD_COPY_AFTER_MS, STALLED_MS, headHurry, type QueuedPeer } from '../../../src/session/head-copy.js';

const NOW = 100_000;
const key = (index: number, begin: number): number => index * 1000 + begin / BLOCK_SIZE;

/** A peer with these blocks (index, block number) in flight, in request order, at `rate` blocks/s. */
function peer(blocks: [number, number][], blocksPerS: number, lastBlockAgoMs = 10): QueuedPeer {
  return { outstanding: new Set(blocks.map(([i, b]) => key(i, b * BLOCK_SIZE))), rate: blocksPerS * BLOCK_SIZE, lastBlockAt: NOW - lastBlockAgoMs };
}

function queue(from: number, n: number): [number, number][] {
  return Array.from({ length: n }, (_, k) => [from + Math.floor(k / 4), k % 4] as [number, number]);
}

describe('headHurry (sequential: copy a head block held by a slower peer?)', () => {
  const fast = peer(queue(20, 40), 2000); // 40 blocks in flight at 2000 blocks/s: a block of its own in 20 ms
  const tokens = new Map<object, QueuedPeer>();
  const peerOf = (t: object | number): QueuedPeer | undefined => tokens.get(t as object);

  it('copies from a slow holder whose block would come much later; not from a holder about to send it', () => {
    const slow = peer(queue(0, 8), 1); // a block a second: its 1st block in 1 s, its 8th in 8 s
    const prompt = peer(queue(2, 40), 1000); // 40 ms for its whole queue
    const S = {};
    const P = {};
    tokens.set(S, slow).set(P, prompt);
    const hurry = headHurry(fast, peerOf, key, NOW);
    expect(hurry(S, 0, 0)).toBe(true);
    expect(hurry(S, 1, 3 * BLOCK_SIZE)).toBe(true);
    expect(hurry(P, 2, 0)).toBe(false);
  });

  it("judges by the block's place in the holder's queue: its first blocks may come soon enough", () => {
    const moderate = peer(queue(0, 40), 4); // 250 ms a block: places 1-2 within HEAD_COPY_AFTER_MS, the rest later
    const M = {};
    tokens.set(M, moderate);
    const hurry = headHurry(fast, peerOf, key, NOW);
    expect(HEAD_COPY_AFTER_MS).toBe(500);
    expect(hurry(M, 0, 0)).toBe(false); // 250 ms
    expect(hurry(M, 0, BLOCK_SIZE)).toBe(false); // 500 ms
    expect(hurry(M, 0, 2 * BLOCK_SIZE)).toBe(true); // 750 ms
    expect(hurry(M, 9, 3 * BLOCK_SIZE)).toBe(true);
    expect(hurry(M, 30, 0)).toBe(false); // not in its queue (released, or a cancel crossed it)
  });

  it('a copier must be much faster: more than twice as soon as the holder', () => {
    const holder = peer(queue(0, 8), 10); // its 8th block in 800 ms
    const H = {};
    tokens.set(H, holder);
    const busyCopier = peer(queue(20, 200), 400); // 201 blocks at 400/s: ~500 ms for a new one
    expect(headHurry(busyCopier, peerOf, key, NOW)(H, 1, 3 * BLOCK_SIZE)).toBe(false); // 800 < 2 x 502
    expect(headHurry(fast, peerOf, key, NOW)(H, 1, 3 * BLOCK_SIZE)).toBe(true);
  });

  it("a holder silent for longer than its rate implies is judged by its silence (a young meter reads high)", () => {
    const young = peer(queue(0, 8), 20, 300); // its rate says 50 ms a block, but nothing came for 300 ms
    const Y = {};
    tokens.set(Y, young);
    const hurry = headHurry(fast, peerOf, key, NOW);
    expect(hurry(Y, 0, 0)).toBe(false); // 300 ms
    expect(hurry(Y, 0, BLOCK_SIZE)).toBe(true); // 600 ms, where its rate said 100
  });

  it('a stalled holder (nothing for STALLED_MS) is copied from whatever its rate said', () => {
    const stalled = peer(queue(0, 4), 1000, STALLED_MS + 1);
    const X = {};
    tokens.set(X, stalled);
    expect(headHurry(fast, peerOf, key, NOW)(X, 0, 0)).toBe(true);
  });

  it('a copier without a measured rate copies nothing; web seeds and the copier itself are never copied from', () => {
    const slow = peer(queue(0, 8), 1);
    const S = {};
    tokens.set(S, slow);
    expect(headHurry(peer([], 0), peerOf, key, NOW)(S, 0, 0)).toBe(false);
    const hurry = headHurry(fast, peerOf, key, NOW);
    expect(hurry({ webSeed: true }, 0, 0)).toBe(false);
    const F = {};
    tokens.set(F, fast);
    expect(hurry(F, 20, 0)).toBe(false);
  });
});
