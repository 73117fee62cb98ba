/**
 * The embedded tracker's bookkeeping (`tt tracker`, `tt demo`): which peers are
 * in which swarm, their counts, and a random sample of them for each announce.
 * Shared by the HTTP and UDP front ends in server.ts; pure apart from the clock
 * and the random source, which tests inject.
 *
 * Costs, since the tracker faces the network: an announce costs O(numwant)
 * (records sit in an array as well as a map, so a sample picks indices instead
 * of copying the swarm) and the seeder count is kept as records change, so
 * neither an announce flood on a 10,000-peer swarm nor a scrape flood walks it;
 * expiry walks a swarm at most once a second. Per-host caps keep one host from
 * filling a swarm or the tracker (HARDENING.md).
 */
import { randomInt } from 'node:crypto';
import { peerKey, toHex } from '../core/ids.js';
import type { AnnounceEvent, ScrapeResult } from './types.js';

export const MAX_SWARMS = 10_000;
export const MAX_PEERS_PER_SWARM = 10_000;
/**
 * One host's share: records in one swarm (its oldest makes room for a new
 * port), and swarms it may open (open mode). Without them one host announcing
 * from 10,000 ports, or 10,000 made-up info hashes, filled a swarm or the
 * tracker and every honest newcomer got "full" (HARDENING.md: per-IP caps).
 */
export const MAX_RECORDS_PER_HOST = 32;
export const MAX_SWARMS_PER_HOST = 256;
/** A swarm's records are expired at most this often. */
const EXPIRE_EVERY_MS = 1_000;
/**
 * A record lives at least this long without a re-announce, whatever interval
 * the tracker asks for: libtorrent (and so qBittorrent, Deluge) announces no
 * more often than every 300 s (min_announce_interval), so with `--interval 120`
 * an expiry of two intervals dropped its live seeders for a minute of every
 * five. opentracker keeps peers for about 30 minutes.
 */
export const MIN_PEER_LIFETIME_S = 15 * 60;

export interface PeerRecord {
  host: string;
  port: number;
  peerId: Buffer;
  left: number;
  expiresAt: number;
}

export interface AnnounceInput {
  infoHash: Buffer;
  peerId: Buffer;
  host: string;
  port: number;
  left: number;
  event: AnnounceEvent | undefined;
  numwant: number;
}

/** A refusal shown to the client as `failure reason` / BEP 15 error. */
export class Refusal extends Error {}

/** A record and where it sits in its swarm's array. */
interface Slot {
  key: string;
  record: PeerRecord;
  index: number;
}

interface Swarm {
  byKey: Map<string, Slot>;
  /** The same records, densely packed: removal swaps the last one in. */
  list: Slot[];
  seeders: number;
  downloaded: number;
  /** Each host's records in this swarm, oldest first (one host's share is capped). */
  byHost: Map<string, Set<string>>;
  expiredAt: number;
}

export interface SwarmTableOptions {
  /** Seconds; records expire after two of them, or MIN_PEER_LIFETIME_S when that is longer. */
  intervalS: number;
  /** When given, only these info hashes are tracked. */
  allowList?: readonly Buffer[] | undefined;
  now?: () => number;
  /** An integer in [0, n). */
  random?: (n: number) => number;
}

export class SwarmTable {
  readonly #swarms = new Map<string, Swarm>();
  readonly #allowed: Set<string> | undefined;
  /** Swarms each host has a record in (for MAX_SWARMS_PER_HOST). */
  readonly #swarmsByHost = new Map<string, number>();
  readonly #intervalS: number;
  readonly #now: () => number;
  readonly #random: (n: number) => number;

  constructor(opts: SwarmTableOptions) {
    this.#intervalS = opts.intervalS;
    this.#allowed = opts.allowList ? new Set(opts.allowList.map((h) => toHex(h))) : undefined;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? randomInt;
  }

  isAllowed(infoHash: Buffer): boolean {
    return this.#allowed === undefined || this.#allowed.has(toHex(infoHash));
  }

  get swarmCount(): number {
    return this.#swarms.size;
  }

  announce(a: AnnounceInput): { peers: PeerRecord[]; seeders: number; leechers: number } {
    if (!this.isAllowed(a.infoHash)) throw new Refusal('torrent not allowed on this tracker');
    const hex = toHex(a.infoHash);
    const now = this.#now();
    let swarm = this.#swarms.get(hex);
    if (swarm === undefined) {
      if (a.event === 'stopped') return { peers: [], seeders: 0, leechers: 0 };
      if ((this.#swarmsByHost.get(a.host) ?? 0) >= MAX_SWARMS_PER_HOST) throw new Refusal(`too many torrents from ${a.host}`);
      if (this.#swarms.size >= MAX_SWARMS) this.sweep();
      if (this.#swarms.size >= MAX_SWARMS) throw new Refusal('tracker is full');
      swarm = { byKey: new Map(), list: [], seeders: 0, downloaded: 0, byHost: new Map(), expiredAt: now };
      this.#swarms.set(hex, swarm);
    }
    this.#expire(swarm, now);
    const key = peerKey(a.host, a.port);
    if (a.event === 'stopped') {
      this.#remove(swarm, key);
      return { peers: [], ...counts(swarm) };
    }
    const known = swarm.byKey.get(key)?.record;
    if (known === undefined) {
      if (swarm.byHost.get(a.host) === undefined && (this.#swarmsByHost.get(a.host) ?? 0) >= MAX_SWARMS_PER_HOST) {
        throw new Refusal(`too many torrents from ${a.host}`);
      }
      // a host at its share: its oldest record makes room (a client that changed port is still found)
      const mine = swarm.byHost.get(a.host);
      if (mine !== undefined && mine.size >= MAX_RECORDS_PER_HOST) this.#remove(swarm, mine.values().next().value!);
      if (swarm.byKey.size >= MAX_PEERS_PER_SWARM) throw new Refusal('swarm is full');
    }
    if (a.event === 'completed' && known !== undefined && known.left > 0) swarm.downloaded++;
    this.#put(swarm, key, { host: a.host, port: a.port, peerId: a.peerId, left: a.left, expiresAt: now + Math.max(2 * this.#intervalS, MIN_PEER_LIFETIME_S) * 1000 });
    return { peers: this.#sample(swarm, key, a.numwant), ...counts(swarm) };
  }

  scrape(infoHash: Buffer): ScrapeResult {
    const swarm = this.#swarms.get(toHex(infoHash));
    if (swarm === undefined) return { complete: 0, incomplete: 0, downloaded: 0 };
    this.#expire(swarm, this.#now());
    const c = counts(swarm);
    return { complete: c.seeders, incomplete: c.leechers, downloaded: swarm.downloaded };
  }

  size(infoHash: Buffer): { seeders: number; leechers: number } {
    const swarm = this.#swarms.get(toHex(infoHash));
    if (swarm === undefined) return { seeders: 0, leechers: 0 };
    this.#expire(swarm, this.#now());
    return counts(swarm);
  }

  /** Expires every swarm's records and forgets swarms left with nothing to say. */
  sweep(): void {
    const now = this.#now();
    for (const [hex, swarm] of this.#swarms) {
      this.#expire(swarm, now, true);
      if (swarm.byKey.size === 0 && swarm.downloaded === 0) this.#swarms.delete(hex);
    }
  }

  #expire(swarm: Swarm, now: number, force = false): void {
    if (!force && now - swarm.expiredAt < EXPIRE_EVERY_MS) return;
    swarm.expiredAt = now;
    // backwards: a removal swaps the last slot into this index, which was already looked at
    for (let i = swarm.list.length - 1; i >= 0; i--) {
      const slot = swarm.list[i]!;
      if (slot.record.expiresAt <= now) this.#remove(swarm, slot.key);
    }
  }

  #put(swarm: Swarm, key: string, record: PeerRecord): void {
    let keys = swarm.byHost.get(record.host);
    if (keys === undefined) {
      swarm.byHost.set(record.host, (keys = new Set()));
      this.#swarmsByHost.set(record.host, (this.#swarmsByHost.get(record.host) ?? 0) + 1);
    }
    keys.delete(key); // a re-announce is the host's newest
    keys.add(key);
    const slot = swarm.byKey.get(key);
    if (slot === undefined) {
      const added = { key, record, index: swarm.list.length };
      swarm.byKey.set(key, added);
      swarm.list.push(added);
    } else {
      if (slot.record.left === 0) swarm.seeders--;
      slot.record = record;
    }
    if (record.left === 0) swarm.seeders++;
  }

  #remove(swarm: Swarm, key: string): void {
    const slot = swarm.byKey.get(key);
    if (slot === undefined) return;
    swarm.byKey.delete(key);
    const last = swarm.list.pop()!;
    if (last !== slot) {
      last.index = slot.index;
      swarm.list[slot.index] = last;
    }
    if (slot.record.left === 0) swarm.seeders--;
    const host = slot.record.host;
    const keys = swarm.byHost.get(host);
    keys?.delete(key);
    if (keys !== undefined && keys.size === 0) {
      swarm.byHost.delete(host);
      const n = (this.#swarmsByHost.get(host) ?? 1) - 1;
      if (n > 0) this.#swarmsByHost.set(host, n);
      else this.#swarmsByHost.delete(host);
    }
  }

  /**
   * Up to `n` records other than `self`, uniformly at random without
   * repeats: a partial Fisher-Yates over the indices, its swaps kept in a
   * small map instead of on the array, so it costs O(n), not O(swarm).
   */
  #sample(swarm: Swarm, self: string, n: number): PeerRecord[] {
    const { list } = swarm;
    const selfIndex = swarm.byKey.get(self)?.index;
    // the asker's own index is moved to the end of the range and never drawn
    const size = selfIndex === undefined ? list.length : list.length - 1;
    const swapped = new Map<number, number>();
    const at = (i: number): number => swapped.get(i) ?? (i === selfIndex ? list.length - 1 : i === list.length - 1 && selfIndex !== undefined ? selfIndex : i);
    const out: PeerRecord[] = [];
    for (let i = 0; i < Math.min(n, size); i++) {
      const j = i + this.#random(size - i);
      const picked = at(j);
      swapped.set(j, at(i));
      out.push(list[picked]!.record);
    }
    return out;
  }
}

function counts(swarm: Swarm): { seeders: number; leechers: number } {
  return { seeders: swarm.seeders, leechers: swarm.byKey.size - swarm.seeders };
}
