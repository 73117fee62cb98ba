/**
 * Request pipeline depth per peer (PERFORMANCE.md): how many 16 KiB requests
 * to keep in flight. Slow start doubles the depth while the peer keeps the
 * pipe full; otherwise the depth follows the measured rate, about
 * QUEUE_TIME_S seconds' worth of blocks (libtorrent keeps ~3 s). Pure.
 */
import { BLOCK_SIZE } from '../core/geometry.js';

export const INITIAL_QUEUE_DEPTH = 32;
export const MIN_QUEUE_DEPTH = 8;
export const MAX_QUEUE_DEPTH = 500;
export const QUEUE_TIME_S = 3;

/**
 * @param current     the depth used during the last tick
 * @param blocksLastTick blocks received from the peer during the last tick (1 s)
 * @param rate        the peer's measured download rate, bytes/s
 * @param cap         the peer's own limit (its BEP 10 reqq) and ours
 */
export function nextQueueDepth(current: number, blocksLastTick: number, rate: number, cap: number): number {
  const limit = Math.max(1, Math.min(cap, MAX_QUEUE_DEPTH));
  // the pipe was drained at least once per tick: the link can take more
  const slowStart = blocksLastTick >= current ? current * 2 : 0;
  const byRate = Math.ceil((rate * QUEUE_TIME_S) / BLOCK_SIZE);
  return Math.min(limit, Math.max(MIN_QUEUE_DEPTH, slowStart, byRate));
}
