import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import {
  INITIAL_QUEUE_DEPTH,
  MAX_QUEUE_DEPTH,
  MIN_QUEUE_DEPTH,
  MIN_SHARE_DEPTH,
  QUEUE_TIME_S,
  SESSION_QUEUE_BLOCKS,
  depthShare,
  grownQueueDepth,
  nextQueueDepth,
} from '../../../src/session/pipeline.js';

describe('grownQueueDepth (slow start)', () => {
  it('grows by one block only when the pipe was full', () => {
    expect(grownQueueDepth(32, 32, 500)).toBe(33);
    expect(grownQueueDepth(32, 40, 500)).toBe(33);
    expect(grownQueueDepth(32, 31, 500)).toBe(32);
    expect(grownQueueDepth(32, 0, 500)).toBe(32);
  });

  it('doubles per round trip while every block arrives into a full pipe', () => {
    let depth = INITIAL_QUEUE_DEPTH;
    const start = depth;
    for (let i = 0; i < start; i++) depth = grownQueueDepth(depth, depth, MAX_QUEUE_DEPTH);
    expect(depth).toBe(2 * start);
  });

  it('is capped by the peer cap and by MAX_QUEUE_DEPTH', () => {
    expect(grownQueueDepth(50, 50, 50)).toBe(50);
    expect(grownQueueDepth(60, 60, 50)).toBe(50); // a cap below the depth pulls it down
    expect(grownQueueDepth(60, 0, 50)).toBe(50);
    expect(grownQueueDepth(MAX_QUEUE_DEPTH, MAX_QUEUE_DEPTH, 100_000)).toBe(MAX_QUEUE_DEPTH);
    expect(grownQueueDepth(1, 1, 0)).toBe(1); // never below one request
  });
});

describe('nextQueueDepth (rate-following)', () => {
  it('follows rate * QUEUE_TIME_S / 16 KiB', () => {
    expect(QUEUE_TIME_S).toBe(3);
    const mib = 1024 * 1024;
    expect(nextQueueDepth(32, 0, mib, 500)).toBe(Math.ceil((mib * QUEUE_TIME_S) / BLOCK_SIZE)); // 192
    expect(nextQueueDepth(32, 0, 2 * mib, 500)).toBe(384);
    expect(nextQueueDepth(32, 0, 100 * BLOCK_SIZE, 500)).toBe(300);
  });

  it('never goes below MIN_QUEUE_DEPTH for a slow or idle peer', () => {
    expect(MIN_QUEUE_DEPTH).toBe(8);
    expect(nextQueueDepth(32, 0, 0, 500)).toBe(MIN_QUEUE_DEPTH);
    expect(nextQueueDepth(32, 3, 1000, 500)).toBe(MIN_QUEUE_DEPTH);
  });

  it('keeps the depth of a peer that kept the pipe saturated', () => {
    expect(nextQueueDepth(100, 100, 0, 500)).toBe(100);
    expect(nextQueueDepth(100, 250, 0, 500)).toBe(100);
    expect(nextQueueDepth(100, 99, 0, 500)).toBe(MIN_QUEUE_DEPTH); // not saturated: back to the rate
  });

  it('respects the cap, even below the minimum (a peer advertising a small reqq)', () => {
    expect(nextQueueDepth(32, 0, 100 * 1024 * 1024, 250)).toBe(250);
    expect(nextQueueDepth(32, 0, 100 * 1024 * 1024, 100_000)).toBe(MAX_QUEUE_DEPTH);
    expect(nextQueueDepth(32, 0, 0, 2)).toBe(2);
    expect(nextQueueDepth(32, 32, 1e9, 5)).toBe(5);
    expect(nextQueueDepth(32, 0, 0, 0)).toBe(1);
  });
});

describe('depthShare', () => {
  it('splits the session budget evenly, with a floor per peer', () => {
    expect(depthShare(0)).toBe(SESSION_QUEUE_BLOCKS);
    expect(depthShare(1)).toBe(SESSION_QUEUE_BLOCKS);
    expect(depthShare(8)).toBe(SESSION_QUEUE_BLOCKS / 8);
    expect(depthShare(3)).toBe(Math.floor(SESSION_QUEUE_BLOCKS / 3));
    expect(depthShare(1000)).toBe(MIN_SHARE_DEPTH);
  });
});
