/**
 * Known peers of one torrent: where they came from, when we may try them
 * again (exponential backoff), and which are banned. A peer is its address
 * and port. Pure bookkeeping: no sockets.
 */
import type { PeerAddress } from '../core/peer-address.js';
import { peerKey } from '../core/ids.js';

export const MAX_KNOWN_PEERS = 2000;
const BASE_RETRY_MS = 5_000;
const MAX_RETRY_MS = 10 * 60_000;
const MAX_FAILURES = 6;

export interface KnownPeer {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  failures: number;
  nextAttemptAt: number;
  /** when we first heard of it (a seed waits before dialing, see candidates) */
  readonly addedAt: number;
  connected: boolean;
  connecting: boolean;
  banned: string | undefined;
  /** Dial it with an encrypted (MSE) handshake: it dropped a plain one. */
  encrypt: boolean;
  /** Given by the user (--peer): never evicted to make room. */
  readonly explicit: boolean;
  /** Heard of through PEX (another peer's word): evicted first, and only PEX may evict PEX. */
  readonly fromPex: boolean;
}

export class PeerPool {
  readonly #peers = new Map<string, KnownPeer>();
  readonly #banned = new Map<string, string>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Add peers from a tracker, the DHT, PEX or the command line; returns how
   * many were new. `explicit`: given by the user, so never held back by a
   * minimum age nor evicted. When the pool is full, the oldest idle peer
   * heard of through PEX makes room, then any idle one but the user's; a
   * peer from PEX only ever replaces another from PEX, so a peer lying
   * through PEX cannot push out what trackers and the user gave.
   */
  add(addresses: readonly PeerAddress[], explicit = false, fromPex = false): number {
    let added = 0;
    for (const a of addresses) {
      if (!Number.isInteger(a.port) || a.port <= 0 || a.port > 65535) continue;
      const key = peerKey(a.host, a.port);
      if (this.#peers.has(key) || this.#banned.has(key)) continue;
      if (this.#peers.size >= MAX_KNOWN_PEERS) this.#evictOne(fromPex);
      if (this.#peers.size >= MAX_KNOWN_PEERS) break;
      this.#peers.set(key, {
        key,
        host: a.host,
        port: a.port,
        failures: 0,
        nextAttemptAt: 0,
        addedAt: explicit ? -Infinity : this.#now(),
        connected: false,
        connecting: false,
        banned: undefined,
        encrypt: false,
        explicit,
        fromPex,
      });
      added++;
    }
    return added;
  }

  get(key: string): KnownPeer | undefined {
    return this.#peers.get(key);
  }

  get size(): number {
    return this.#peers.size;
  }

  /**
   * Peers we may dial now, at most `limit`. `minAgeMs`: only peers known for
   * at least that long (a seed lets leechers connect first, so the two sides
   * do not open a connection each).
   */
  candidates(limit: number, minAgeMs = 0): KnownPeer[] {
    const now = this.#now();
    const out: KnownPeer[] = [];
    for (const p of this.#peers.values()) {
      if (out.length >= limit) break;
      if (!p.connected && !p.connecting && p.nextAttemptAt <= now && now - p.addedAt >= minAgeMs) out.push(p);
    }
    return out;
  }

  /** True when some peer is waiting only for its backoff to expire. */
  hasWaiting(): boolean {
    for (const p of this.#peers.values()) if (!p.connected && !p.connecting) return true;
    return false;
  }

  markConnecting(key: string): void {
    const p = this.#peers.get(key);
    if (p) p.connecting = true;
  }

  markConnected(key: string): void {
    const p = this.#peers.get(key);
    if (!p) return;
    p.connecting = false;
    p.connected = true;
    p.failures = 0;
  }

  /** A dial failed or a connection ended; schedule a retry with backoff, or forget the peer. */
  markFailed(key: string, retry = true): void {
    const p = this.#peers.get(key);
    if (!p) return;
    p.connecting = false;
    p.connected = false;
    p.failures++;
    if (!retry || p.failures > MAX_FAILURES) {
      this.#peers.delete(key);
      return;
    }
    p.nextAttemptAt = this.#now() + Math.min(MAX_RETRY_MS, BASE_RETRY_MS * 2 ** (p.failures - 1));
  }

  /**
   * The peer closed a plain BitTorrent handshake without answering: peers set
   * to require encryption do that. Redial it at once with MSE, once; true
   * when that retry was scheduled (false: it was already encrypted).
   */
  retryEncrypted(key: string): boolean {
    const p = this.#peers.get(key);
    if (!p || p.encrypt) return false;
    p.encrypt = true;
    p.connecting = false;
    p.connected = false;
    p.nextAttemptAt = 0;
    return true;
  }

  ban(key: string, reason: string): void {
    this.#banned.set(key, reason);
    this.#peers.delete(key);
  }

  isBanned(key: string): boolean {
    return this.#banned.has(key);
  }

  /** Forget the oldest idle PEX peer, else (unless `pexOnly`) the oldest idle peer the user did not give. */
  #evictOne(pexOnly: boolean): void {
    for (const pass of pexOnly ? [true] : [true, false]) {
      for (const [key, p] of this.#peers) {
        if (p.connected || p.connecting || p.explicit || (pass && !p.fromPex)) continue;
        this.#peers.delete(key);
        return;
      }
    }
  }
}
