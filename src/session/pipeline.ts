/**
 * Request pipeline depth per peer (PERFORMANCE.md): how many 16 KiB requests
 * to keep in flight. Slow start widens the pipe by one per block received
 * (doubling each round trip); after that the depth follows the measured rate,
 * about QUEUE_TIME_S seconds' worth of blocks (libtorrent keeps ~3 s). Pure.
 */
import { BLOCK_SIZE } from '../core/geometry.js';

export const INITIAL_QUEUE_DEPTH = 32;
export const MIN_QUEUE_DEPTH = 8;
export const MAX_QUEUE_DEPTH = 500;
export const QUEUE_TIME_S = 3;
/**
 * Blocks in flight across all peers (16 MiB): each peer gets an equal share,
 * never less than MIN_SHARE_DEPTH. Without it every peer may keep 500 blocks
 * in flight, and each of those pieces holds a piece buffer while it
 * assembles: memory grew with the number of peers.
 */
export const SESSION_QUEUE_BLOCKS = 1024;
export const MIN_SHARE_DEPTH = 32;

/** The most blocks one of `activePeers` peers we download from may have in flight. */
export function depthShare(activePeers: number): number {
  return Math.max(MIN_SHARE_DEPTH, Math.floor(SESSION_QUEUE_BLOCKS / Math.max(1, activePeers)));
}

/**
 * Slow start, as TCP does it: every block received while the pipe is full
 * widens it by one, so the depth doubles every round trip until the cap.
 */
export function grownQueueDepth(current: number, outstandingBeforeBlock: number, cap: number): number {
  const limit = Math.max(1, Math.min(cap, MAX_QUEUE_DEPTH));
  return outstandingBeforeBlock >= current ? Math.min(limit, current + 1) : Math.min(limit, current);
}

/**
 * Once a second: a peer that kept the pipe saturated keeps its depth (slow
 * start grows it per block); otherwise the depth follows its measured rate,
 * QUEUE_TIME_S seconds' worth of blocks.
 * @param current        the depth used during the last tick
 * @param blocksLastTick blocks received from the peer during the last tick
 * @param rate           the peer's measured download rate, bytes/s
 * @param cap            the peer's own limit (its BEP 10 reqq) and ours
 */
export function nextQueueDepth(current: number, blocksLastTick: number, rate: number, cap: number): number {
  const limit = Math.max(1, Math.min(cap, MAX_QUEUE_DEPTH));
  const byRate = Math.ceil((rate * QUEUE_TIME_S) / BLOCK_SIZE);
  const saturated = blocksLastTick >= current ? current : 0;
  return Math.min(limit, Math.max(MIN_QUEUE_DEPTH, saturated, byRate));
}
