/**
 * Known peers of one torrent: where they came from, when we may try them
 * again (exponential backoff), and which are banned. A peer is its address
 * and port. Pure bookkeeping: no sockets.
 *
 * Two kinds of backoff: a failure (a dial refused, a connection lost) waits
 * 5 s doubling and is forgotten by the next handshake; a peer that answered
 * but had nothing for us (markUnhelpful: a magnet's metadata phase meeting a
 * peer without the metadata) waits the caller's longer step, doubling with
 * every such visit, which a handshake does not undo.
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
const MAX_FAILURES = 6;

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
  }

  /** A dial failed or a connection ended; schedule a retry with backoff, or forget the peer. */
  markFailed(key: string, retry = true): void {
    const p = this.#peers.get(key);
    if (!p) return;
    p.connecting = false;
    p.connected = false;
    p.failures++;
    if (!retry || p.failures > MAX_FAILURES) {
      this.#forget(key);
      return;
    }
    p.nextAttemptAt = this.#now() + Math.min(MAX_RETRY_MS, BASE_RETRY_MS * 2 ** (p.failures - 1));
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
