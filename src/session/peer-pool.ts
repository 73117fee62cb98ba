/**
 * Known peers of one torrent: where they came from, when we may try them
 * again (exponential backoff), and which are banned. A peer is its address
 * and port. Pure bookkeeping: no sockets.
 *
 * Two kinds of backoff: a failure (a dial refused, a connection lost) waits
 * 5 s doubling and is forgotten by the next handshake; a peer that answered
 * but had nothing for us (markUnhelpful: a magnet's metadata phase meeting a
 * peer without the metadata) waits the caller's longer step, doubling with
 * every such visit, which a handshake does not undo. A failing peer is
 * forgotten after MAX_FAILURES in a row, except the user's own (`--peer`,
 * a magnet's `x.pe`: never forgotten, redialed at least every
 * KNOWN_MAX_RETRY_MS) and a peer we once had a connection with (also
 * redialed at least that often, forgotten after failing for
 * KNOWN_FORGET_AFTER_MS): a seed that restarts is found again within 30 s.
 *
 * Per-IP limits live here too, because one host can name itself under many
 * ports (or name a victim's ports, to use us as a port scanner): at most
 * MAX_KNOWN_PER_IP addresses of one IP are kept, and `candidates` hands out
 * no more dials to an IP than the caller's per-IP connection limit allows.
 */
import { ipOf, type PeerAddress } from '../core/peer-address.js';
import { peerKey } from '../core/ids.js';

export const MAX_KNOWN_PEERS = 2000;
/**
 * Connections one IP may have at once (both directions). libtorrent and
 * Transmission allow one; several real peers share an address behind a NAT
 * and on loopback, so tt allows a few, which still keeps one host to a
 * sixth of the default 50 and bounds what a list of one IP's ports can make
 * us dial at once.
 */
export const DEFAULT_MAX_PEERS_PER_IP = 8;
/** Addresses of one IP kept in the pool (more of the user's own `--peer`s are still taken). */
export const MAX_KNOWN_PER_IP = 32;
const BASE_RETRY_MS = 5_000;
const MAX_RETRY_MS = 10 * 60_000;
/** Failures in a row after which a peer is forgotten (5 s .. 160 s: about 5 min of trying), unless kept below. */
const MAX_FAILURES = 6;
/**
 * Longest wait between dials of a peer the user gave or that we once had a
 * connection with: a seed that went away and came back is found within this.
 * Such a peer is usually alive (the user's own machine, a seed that
 * restarted); a refused dial costs one SYN, so trying every 30 s is cheap,
 * where the doubling alone would wait 80 s, then 160 s.
 */
export const KNOWN_MAX_RETRY_MS = 30_000;
/** A peer we had a connection with (not the user's) is forgotten after failing for this long (the doubling's horizon). */
export const KNOWN_FORGET_AFTER_MS = 5 * 60_000;

export interface KnownPeer {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  failures: number;
  /** Connections that worked but ended because the peer had nothing for us (markUnhelpful); never reset. */
  unhelpful: number;
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
  /** We had a connection with it (a handshake): its redial wait is capped at KNOWN_MAX_RETRY_MS. */
  everConnected: boolean;
  /** When the current run of failures began (undefined: none since the last handshake). */
  failingSince: number | undefined;
}

export class PeerPool {
  readonly #peers = new Map<string, KnownPeer>();
  readonly #banned = new Map<string, string>();
  /** IP -> how many of #peers are at it */
  readonly #perIp = new Map<string, number>();
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
   * through PEX cannot push out what trackers and the user gave. An IP
   * that already has MAX_KNOWN_PER_IP addresses here gets no more, unless
   * the user gave them.
   */
  add(addresses: readonly PeerAddress[], explicit = false, fromPex = false): number {
    let added = 0;
    for (const a of addresses) {
      if (!Number.isInteger(a.port) || a.port <= 0 || a.port > 65535) continue;
      const key = peerKey(a.host, a.port);
      if (this.#peers.has(key) || this.#banned.has(key)) continue;
      const ip = ipOf(a.host);
      if (!explicit && (this.#perIp.get(ip) ?? 0) >= MAX_KNOWN_PER_IP) continue;
      if (this.#peers.size >= MAX_KNOWN_PEERS) this.#evictOne(fromPex);
      if (this.#peers.size >= MAX_KNOWN_PEERS) break;
      this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
      this.#peers.set(key, {
        key,
        host: a.host,
        port: a.port,
        failures: 0,
        unhelpful: 0,
        nextAttemptAt: 0,
        addedAt: explicit ? -Infinity : this.#now(),
        connected: false,
        connecting: false,
        banned: undefined,
        encrypt: false,
        explicit,
        fromPex,
        everConnected: false,
        failingSince: undefined,
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
   * do not open a connection each). `perIp`: connections (open or opening)
   * per IP now, and the most one IP may have; an IP at its limit is skipped,
   * and each peer handed out counts in `busy` (which this updates).
   */
  candidates(limit: number, minAgeMs = 0, perIp?: { readonly limit: number; readonly busy: Map<string, number> }): KnownPeer[] {
    const now = this.#now();
    const out: KnownPeer[] = [];
    for (const p of this.#peers.values()) {
      if (out.length >= limit) break;
      if (p.connected || p.connecting || p.nextAttemptAt > now || now - p.addedAt < minAgeMs) continue;
      if (perIp) {
        const ip = ipOf(p.host);
        const n = perIp.busy.get(ip) ?? 0;
        if (n >= perIp.limit) continue;
        perIp.busy.set(ip, n + 1);
      }
      out.push(p);
    }
    return out;
  }

  /** Per IP, how many of the pool's peers are connected or being dialed (for `candidates` when every connection is one we dialed). */
  busyByIp(): Map<string, number> {
    const busy = new Map<string, number>();
    for (const p of this.#peers.values()) {
      if (!p.connected && !p.connecting) continue;
      const ip = ipOf(p.host);
      busy.set(ip, (busy.get(ip) ?? 0) + 1);
    }
    return busy;
  }

  /** The peers still known that were heard of through PEX (the banned and the forgotten are not). */
  fromPex(): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const p of this.#peers.values()) if (p.fromPex) out.push({ host: p.host, port: p.port });
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
    p.failingSince = undefined;
    p.everConnected = true;
  }

  /**
   * A dial failed or a connection ended; schedule a retry with backoff, or
   * forget the peer: after MAX_FAILURES in a row, or at once when `retry`
   * is false (it broke the protocol). The user's peers are never forgotten
   * and, like a peer we once had a connection with, wait at most
   * KNOWN_MAX_RETRY_MS; such a peer that is not the user's is forgotten
   * once it has been failing for KNOWN_FORGET_AFTER_MS.
   */
  markFailed(key: string, retry = true): void {
    const p = this.#peers.get(key);
    if (!p) return;
    const now = this.#now();
    p.connecting = false;
    p.connected = false;
    p.failures++;
    p.failingSince ??= now;
    const known = p.explicit || p.everConnected;
    const forget = !p.explicit && (!retry || (p.everConnected ? now - p.failingSince >= KNOWN_FORGET_AFTER_MS : p.failures > MAX_FAILURES));
    if (forget) {
      this.#forget(key);
      return;
    }
    const step = BASE_RETRY_MS * 2 ** Math.min(p.failures - 1, 16);
    p.nextAttemptAt = now + Math.min(known ? KNOWN_MAX_RETRY_MS : MAX_RETRY_MS, step);
  }

  /** The address turned out to be our own: forgotten, even when the user gave it. */
  markSelf(key: string): void {
    this.#forget(key);
  }

  /**
   * The connection worked, but the peer had nothing for us and was closed
   * (a magnet's metadata phase: it has no metadata). Not a failure, so the
   * next handshake does not make it look new again: the wait before it is
   * dialed again is `baseMs`, doubled on each such visit, at most
   * MAX_RETRY_MS. It stays known meanwhile, so a tracker or PEX naming it
   * again does not bring it back sooner.
   */
  markUnhelpful(key: string, baseMs: number): void {
    const p = this.#peers.get(key);
    if (!p) return;
    p.connecting = false;
    p.connected = false;
    p.unhelpful++;
    p.nextAttemptAt = this.#now() + Math.min(MAX_RETRY_MS, baseMs * 2 ** (p.unhelpful - 1));
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
    this.#forget(key);
  }

  isBanned(key: string): boolean {
    return this.#banned.has(key);
  }

  /** Forget the oldest idle PEX peer, else (unless `pexOnly`) the oldest idle peer the user did not give. */
  #evictOne(pexOnly: boolean): void {
    for (const pass of pexOnly ? [true] : [true, false]) {
      for (const [key, p] of this.#peers) {
        if (p.connected || p.connecting || p.explicit || (pass && !p.fromPex)) continue;
        this.#forget(key);
        return;
      }
    }
  }

  #forget(key: string): void {
    const p = this.#peers.get(key);
    if (!p) return;
    this.#peers.delete(key);
    const ip = ipOf(p.host);
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.#perIp.set(ip, n);
    else this.#perIp.delete(ip);
  }
}
