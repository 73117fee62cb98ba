/**
 * Sequential downloads: whether a peer should copy a block of the head (the
 * lowest missing pieces) that another peer holds (the picker's `hurry`,
 * pieces/picker.ts). Pure: it sees each peer's requests in flight, in the
 * order they were sent, its download rate and when its last block came.
 *
 * A block's expected arrival from the peer holding it is its place in that
 * peer's queue times the peer's time per block: by its rate, or the silence
 * since its last block if longer (a peer that has sent nothing for
 * STALLED_MS: never); from the copier, its whole queue plus this block over
 * its rate. A copy is asked for only when the holder would take more than
 * HEAD_COPY_AFTER_MS and more than twice the copier's time: a copy that
 * arrives about when the original would is bytes sent twice for nothing. A
 * copier with no measured rate yet copies nothing.
 */
import { BLOCK_SIZE } from '../core/geometry.js';
import type { Hurry, PeerToken } from '../pieces/picker.js';

/** A head block the holder would deliver sooner than this is left to it. */
export const HEAD_COPY_AFTER_MS = 500;
/** A peer that sent nothing for this long while holding our requests is taken as stalled. */
export const STALLED_MS = 1_000;

export interface QueuedPeer {
  /** Keys of the blocks requested and not yet received, in the order they were requested. */
  readonly outstanding: ReadonlySet<number>;
  /** Download rate from this peer, bytes/s. */
  readonly rate: number;
  /** When its last block arrived (ms, the clock `now` is on). */
  readonly lastBlockAt: number;
}

/**
 * The `hurry` for one pick by `copier`: `peerOf` finds the peer behind a
 * requester token (undefined: not a peer, such as a web seed: never copied);
 * `keyOf` turns (index, begin) into the key `outstanding` holds.
 */
export function headHurry(
  copier: QueuedPeer,
  peerOf: (token: PeerToken) => QueuedPeer | undefined,
  keyOf: (index: number, begin: number) => number,
  now: number,
): Hurry {
  if (copier.rate <= 0) return () => false;
  const copierMs = ((copier.outstanding.size + 1) * BLOCK_SIZE * 1000) / copier.rate;
  const threshold = Math.max(HEAD_COPY_AFTER_MS, 2 * copierMs);
  // each holder's queue positions, worked out once per pick and only for holders that may be slow
  const positions = new Map<QueuedPeer, Map<number, number>>();
  return (requester, index, begin) => {
    const holder = peerOf(requester);
    if (holder === undefined || holder === copier) return false;
    if (now - holder.lastBlockAt > STALLED_MS || holder.rate <= 0) return true;
    // a young meter can read high (one early block over a short age): a peer that has sent
    // nothing for longer than its rate implies sends at most a block per that silence
    const perBlockMs = Math.max((BLOCK_SIZE * 1000) / holder.rate, now - holder.lastBlockAt);
    if (holder.outstanding.size * perBlockMs <= threshold) return false; // its whole queue comes sooner
    let queue = positions.get(holder);
    if (!queue) {
      queue = new Map();
      let place = 0;
      for (const key of holder.outstanding) queue.set(key, place++);
      positions.set(holder, queue);
    }
    const place = queue.get(keyOf(index, begin));
    if (place === undefined) return false; // not awaited from it (released, or on its way after a cancel)
    return (place + 1) * perBlockMs > threshold;
  };
}
