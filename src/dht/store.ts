/**
 * What a DHT node keeps for others (BEP 5): the peers announced to it per info
 * hash (bounded in hashes and peers, expiring), and the write tokens that
 * prove an announcer asked get_peers from its own address recently (a secret
 * rotated every 5 minutes; the previous one still accepted). Pure apart from
 * the random secret; time comes in as an argument.
 */
import { createHash, randomBytes } from 'node:crypto';
import { encodeCompactPeer, type DhtPeer } from './krpc.js';

/** An announced peer is forgotten after this long without a re-announce (libtorrent: 30 min). */
export const PEER_TTL_MS = 30 * 60_000;
/**
 * Most info hashes stored; the one announced longest ago makes room. With
 * MAX_PEERS_PER_HASH this bounds the store at 100,000 entries (a few tens of
 * MiB at worst): a client's courtesy to the DHT, not a supernode's.
 */
export const MAX_STORED_HASHES = 1000;
/** Most peers stored per info hash. */
export const MAX_PEERS_PER_HASH = 100;
/**
 * Most info hashes one address may have peers stored under: past it, its own
 * least recently announced one is dropped, so one IP cannot evict every torrent
 * others announced by announcing MAX_STORED_HASHES new ones.
 */
export const MAX_HASHES_PER_HOST = 100;
/** Most values returned in one get_peers reply (fits a 1.5 KB datagram). */
export const MAX_VALUES_RETURNED = 50;
export const TOKEN_ROTATE_MS = 5 * 60_000;
export const TOKEN_BYTES = 8;

/** The host part of a "host:port" key (IPv4 only). */
function hostOf(key: string): string {
  return key.slice(0, key.lastIndexOf(':'));
}

/**
 * Make room in a full peer list: the oldest entry of the address holding the
 * most entries goes, so one IP announcing many ports only displaces itself,
 * never the peers other addresses announced (several peers behind one NAT
 * still fit while there is room).
 */
function evictFromLargestHost(peers: Map<string, number>): void {
  const counts = new Map<string, number>();
  let largest = '';
  let most = 0;
  for (const k of peers.keys()) {
    const host = hostOf(k);
    const n = (counts.get(host) ?? 0) + 1;
    counts.set(host, n);
    if (n > most) {
      most = n;
      largest = host;
    }
  }
  for (const k of peers.keys()) {
    if (hostOf(k) === largest) {
      peers.delete(k);
      return;
    }
  }
}

export class PeerStore {
  /** hex info hash -> ("host:port" -> expiry time); Map order = least recently announced first */
  readonly #hashes = new Map<string, Map<string, number>>();
  /**
   * host -> the hashes it announced, least recent first. May name hashes it no
   * longer has peers under (evicted, expired): those are harmless when popped,
   * and expire() rebuilds it exactly.
   */
  #byHost = new Map<string, Map<string, true>>();
  /** #byHost size that triggers a rebuild (amortised: at least twice the live hosts). */
  #rebuildAt = MAX_STORED_HASHES;

  get hashCount(): number {
    return this.#hashes.size;
  }

  add(infoHash: Buffer, host: string, port: number, now: number): boolean {
    if (!encodeCompactPeer(host, port) || port === 0) return false;
    const hex = infoHash.toString('hex');
    let peers = this.#hashes.get(hex);
    if (peers) {
      // most recently announced last: eviction takes the hash announced longest ago
      this.#hashes.delete(hex);
      this.#hashes.set(hex, peers);
    } else {
      // full: the hash announced longest ago goes (O(1); expiry of the rest is the periodic expire())
      if (this.#hashes.size >= MAX_STORED_HASHES) {
        const oldest = this.#hashes.keys().next().value;
        if (oldest !== undefined) this.#hashes.delete(oldest);
      }
      peers = new Map();
      this.#hashes.set(hex, peers);
    }
    const k = `${host}:${port}`;
    peers.delete(k);
    if (peers.size >= MAX_PEERS_PER_HASH) evictFromLargestHost(peers);
    peers.set(k, now + PEER_TTL_MS);
    this.#noteHost(host, hex);
    return true;
  }

  /** Record that `host` announced `hex`; past MAX_HASHES_PER_HOST its least recent hash loses its peers from `host`. */
  #noteHost(host: string, hex: string): void {
    let hashes = this.#byHost.get(host);
    if (!hashes) {
      // stale hosts pile up only between expire() calls: drop them when they double the live ones
      if (this.#byHost.size >= this.#rebuildAt) this.#rebuildByHost();
      hashes = new Map();
      this.#byHost.set(host, hashes);
    }
    hashes.delete(hex);
    hashes.set(hex, true);
    while (hashes.size > MAX_HASHES_PER_HOST) {
      const oldest = hashes.keys().next().value as string;
      hashes.delete(oldest);
      const peers = this.#hashes.get(oldest);
      if (!peers) continue;
      for (const k of peers.keys()) if (hostOf(k) === host) peers.delete(k);
      if (peers.size === 0) this.#hashes.delete(oldest);
    }
  }

  #rebuildByHost(): void {
    const byHost = new Map<string, Map<string, true>>();
    for (const [hex, peers] of this.#hashes) {
      for (const k of peers.keys()) {
        const host = hostOf(k);
        let hashes = byHost.get(host);
        if (!hashes) byHost.set(host, (hashes = new Map()));
        hashes.set(hex, true);
      }
    }
    this.#byHost = byHost;
    this.#rebuildAt = Math.max(MAX_STORED_HASHES, 2 * byHost.size);
  }

  /** Up to `max` live compact peers for `infoHash`, a random selection when there are more. */
  values(infoHash: Buffer, now: number, max = MAX_VALUES_RETURNED): Buffer[] {
    return this.peers(infoHash, now, max).map((p) => encodeCompactPeer(p.host, p.port)!);
  }

  /** Up to `max` live peers for `infoHash`, a random selection when there are more. */
  peers(infoHash: Buffer, now: number, max = MAX_VALUES_RETURNED): DhtPeer[] {
    const hex = infoHash.toString('hex');
    const peers = this.#hashes.get(hex);
    if (!peers) return [];
    const live: string[] = [];
    for (const [k, expires] of peers) {
      if (expires <= now) peers.delete(k);
      else live.push(k);
    }
    if (peers.size === 0) this.#hashes.delete(hex);
    for (let i = live.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [live[i], live[j]] = [live[j]!, live[i]!];
    }
    return live.slice(0, max).map((k) => ({ host: hostOf(k), port: Number(k.slice(k.lastIndexOf(':') + 1)) }));
  }

  /** Drop expired peers and empty hashes (and forget what hosts no longer hold). */
  expire(now: number): void {
    for (const [hex, peers] of this.#hashes) {
      for (const [k, expires] of peers) if (expires <= now) peers.delete(k);
      if (peers.size === 0) this.#hashes.delete(hex);
    }
    this.#rebuildByHost();
  }
}

/** Write tokens: SHA-1(secret | ip) truncated, for the current and the previous secret. */
export class TokenIssuer {
  #current = randomBytes(20);
  #previous = randomBytes(20);
  #rotatedAt: number;

  constructor(now: number) {
    this.#rotatedAt = now;
  }

  /**
   * Rotate on a fixed schedule (every TOKEN_ROTATE_MS since construction),
   * however the calls fall: a token is accepted for at most two periods.
   */
  #rotate(now: number): void {
    const periods = Math.floor((now - this.#rotatedAt) / TOKEN_ROTATE_MS);
    if (periods < 1) return;
    // after two or more periods both secrets are stale
    this.#previous = periods === 1 ? this.#current : randomBytes(20);
    this.#current = randomBytes(20);
    this.#rotatedAt += periods * TOKEN_ROTATE_MS;
  }

  issue(ip: string, now: number): Buffer {
    this.#rotate(now);
    return tokenFor(this.#current, ip);
  }

  valid(token: Buffer, ip: string, now: number): boolean {
    this.#rotate(now);
    return token.equals(tokenFor(this.#current, ip)) || token.equals(tokenFor(this.#previous, ip));
  }
}

function tokenFor(secret: Buffer, ip: string): Buffer {
  return createHash('sha1').update(secret).update(ip, 'latin1').digest().subarray(0, TOKEN_BYTES);
}
