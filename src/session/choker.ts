/**
 * Choking policy (BEP 3 "choking"): which interested peers get an upload slot.
 * While downloading, tit-for-tat: the peers that upload to us fastest. While
 * seeding, the peers we upload to fastest (libtorrent's "fastest upload"
 * seed choker). One extra optimistic slot rotates every 30 s. Pure.
 */

export const RECHOKE_INTERVAL_MS = 10_000;
export const OPTIMISTIC_INTERVAL_MS = 30_000;

export interface ChokeCandidate<K> {
  readonly key: K;
  readonly interested: boolean;
  /** bytes/s the peer sends us */
  readonly downloadRate: number;
  /** bytes/s we send the peer */
  readonly uploadRate: number;
  /** When we last gave it a slot (0: never): among equal rates, the longest without one goes first. */
  readonly unchokedAt?: number;
  /**
   * It has held a slot for a rechoke interval and asked for nothing: it goes
   * last, and loses the optimistic slot (a peer that says interested and
   * never requests would otherwise keep a slot from honest peers).
   */
  readonly idleSlot?: boolean;
}

/**
 * Returns the keys to unchoke, exactly min(slots, interested peers) of them:
 * the optimistic peer first when it is interested, then the fastest by rate.
 */
export function chooseUnchoked<K>(
  peers: readonly ChokeCandidate<K>[],
  slots: number,
  seeding: boolean,
  optimistic: K | undefined,
): Set<K> {
  const interested = peers.filter((p) => p.interested);
  const rate = (p: ChokeCandidate<K>): number => (seeding ? p.uploadRate : p.downloadRate);
  interested.sort((a, b) => Number(a.idleSlot === true) - Number(b.idleSlot === true) || rate(b) - rate(a) || (a.unchokedAt ?? 0) - (b.unchokedAt ?? 0));
  const chosen = new Set<K>();
  if (optimistic !== undefined && slots > 0 && interested.some((p) => p.key === optimistic && p.idleSlot !== true)) chosen.add(optimistic);
  for (const p of interested) {
    if (chosen.size >= slots) break;
    chosen.add(p.key);
  }
  return chosen;
}

/** Pick the next optimistic unchoke: a random interested peer not in `exclude`. */
export function pickOptimistic<K>(peers: readonly ChokeCandidate<K>[], exclude: ReadonlySet<K>, random: () => number = Math.random): K | undefined {
  const pool = peers.filter((p) => p.interested && !exclude.has(p.key));
  if (pool.length === 0) return undefined;
  return pool[Math.floor(random() * pool.length)]!.key;
}
