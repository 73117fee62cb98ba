/**
 * Peer exchange pacing for one connection (BEP 11 over wire/pex.ts): when we
 * may send the next ut_pex message and what it says (the peers added and
 * dropped since the last one we sent this peer), and whether a message the
 * peer sent comes too soon. Pure: the session supplies the clock and the set
 * of peers it is connected to.
 */
import type { PeerAddress } from '../core/peer-address.js';
import { MAX_PEX_SEND, type PexPeer } from '../wire/pex.js';

/** One message a minute, as BEP 11 asks and libtorrent enforces (it disconnects faster senders). */
export const PEX_INTERVAL_MS = 60_000;
/** Messages from a peer closer together than this are ignored (libtorrent's first one follows its handshake). */
export const PEX_MIN_GAP_MS = 20_000;
/** Ignored (too early) messages tolerated before the connection is closed as a flood. */
export const MAX_EARLY_PEX = 5;
/** Peers one connection may add to our pool over its life (libtorrent's max_pex_peers): a liar cannot fill it alone. */
export const MAX_PEX_LEARNED = 200;

export class PexPacer {
  /** Keys of the peers the other side has been told about and not told dropped. */
  readonly #told = new Map<string, PeerAddress>();
  #sentAt: number | undefined;
  #receivedAt: number | undefined;
  #early = 0;
  #learned = 0;

  /**
   * The message to send now, or undefined (too soon, or nothing new).
   * `current`: the peers we are connected to, by key, without the recipient.
   */
  next(now: number, current: ReadonlyMap<string, PexPeer>): { added: PexPeer[]; dropped: PeerAddress[] } | undefined {
    if (this.#sentAt !== undefined && now - this.#sentAt < PEX_INTERVAL_MS) return undefined;
    const added: PexPeer[] = [];
    const dropped: PeerAddress[] = [];
    for (const [key, peer] of current) {
      if (added.length >= MAX_PEX_SEND) break;
      if (!this.#told.has(key)) added.push(peer);
    }
    for (const [key, peer] of this.#told) {
      if (dropped.length >= MAX_PEX_SEND) break;
      if (!current.has(key)) dropped.push(peer);
    }
    if (added.length === 0 && dropped.length === 0) return undefined;
    this.#sentAt = now;
    for (const p of added) this.#told.set(keyOf(p), { host: p.host, port: p.port });
    for (const p of dropped) this.#told.delete(keyOf(p));
    return { added, dropped };
  }

  /** How many more peers this connection may add to the pool; `took(n)` counts the ones it added. */
  get learnRoom(): number {
    return MAX_PEX_LEARNED - this.#learned;
  }

  took(n: number): void {
    this.#learned += n;
  }

  /** A message arrived: 'use' it, 'ignore' it (too soon), or 'close' (too many too soon). */
  received(now: number): 'use' | 'ignore' | 'close' {
    if (this.#receivedAt !== undefined && now - this.#receivedAt < PEX_MIN_GAP_MS) {
      return ++this.#early > MAX_EARLY_PEX ? 'close' : 'ignore';
    }
    this.#receivedAt = now;
    return 'use';
  }
}

/** The key `current` maps use: host and port. */
export function keyOf(p: PeerAddress): string {
  return `${p.host}|${p.port}`;
}
