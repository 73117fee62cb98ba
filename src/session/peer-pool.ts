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
 * Bans (`ban`) cover the peer, not only one connection's address:port: its
 * IP with the peer id of its handshake, and its listening address (the one
 * we dialed, or the BEP 10 `p` it announced), so it cannot come back by
 * dialing us from a new ephemeral port; `admit` says at each handshake
 * whether a connection is such a peer. Whole IPs are never banned (many
 * honest peers share one behind a NAT, and on loopback). An IP where
 * SUSPECT_BANS peers were banned is suspect: a peer there that never proved
 * itself (`prove`: a piece it sent verified) is let in at most once per
 * window each way (connecting to us, dialed by us; 10 s, doubling with each
 * further ban there, at most 5 min) and on probation (the session asks it
 * for one piece at a time), so a peer that changes its peer id and port on
 * every connection costs at most a piece per window. Every record here is
 * bounded (MAX_BAN_RECORDS).
 *
 * Per-IP limits live here too, because one host can name itself under many
 * ports (or name a victim's ports, to use us as a port scanner): at most
 * MAX_KNOWN_PER_IP addresses of one IP are dialable at a time, and
 * `candidates` hands out no more dials to an IP than the caller's per-IP
 * connection limit allows. Dead addresses at an IP must not hide a live one
 * there (a reply naming 100 dead ports of a seeder's IP, then the seeder):
 * more addresses of a full IP queue, first come first kept (at most
 * MAX_QUEUED_PER_IP, never dialed while queued), and an address there that
 * failed and never connected makes room: at once for a newcomer when none
 * queue, else, after its failure, for the first in the queue (it is
 * forgotten; its source may name it again). So every address one reply
 * names is dialed within the queue's bound, each dead one about once, while
 * one IP still never has more than MAX_KNOWN_PER_IP addresses in backoff.
 * `candidates` offers addresses never tried before retries of failed ones.
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
/** Addresses of one IP dialable at a time (more of the user's own `--peer`s are still taken); more queue. */
export const MAX_KNOWN_PER_IP = 32;
/** Addresses of one IP queued behind its MAX_KNOWN_PER_IP (first come first kept; beyond this they are dropped). */
export const MAX_QUEUED_PER_IP = 256;
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
/** Banned identities, ban reasons by address, proven identities, per-IP ban records: each at most this many (oldest dropped). */
export const MAX_BAN_RECORDS = 4096;
/** Bans at one IP (within IP_BAN_MEMORY_MS of each other) that make it suspect (see `admit`). */
export const SUSPECT_BANS = 2;
/** At a suspect IP, a peer that has not proven itself is let in once per window: this, doubling with each further ban there. */
export const SUSPECT_WINDOW_MS = 10_000;
export const MAX_SUSPECT_WINDOW_MS = 5 * 60_000;
/** An IP's bans are forgotten after this long without a new one. */
export const IP_BAN_MEMORY_MS = 60 * 60_000;

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
  /** Waiting for a place among its IP's MAX_KNOWN_PER_IP: never dialed meanwhile. */
  queued: boolean;
}

/** Who a connection's peer is, beyond the address:port of one connection: what a ban covers. */
export interface PeerIdentity {
  /** Its IP, as ipOf spells it. */
  readonly ip: string;
  /** The peer id of its handshake. */
  readonly peerId?: Buffer | undefined;
  /** Where it accepts connections: the address we dialed, or its IP with the `p` of its extended handshake. */
  readonly listen?: PeerAddress | undefined;
  /** Its connection came to us (false: we dialed it). */
  readonly incoming?: boolean | undefined;
}

/** What `admit` decided for a connection at its handshake. */
export type Admission =
  /** `banned`: it is a banned peer (otherwise it came from a suspect IP too soon after the last newcomer there). */
  | { readonly refused: string; readonly banned: boolean }
  /** `probation`: a newcomer at a suspect IP: ask it for one piece at a time until it proves itself. */
  | { readonly refused: undefined; readonly probation: boolean };

interface IpBans {
  bans: number;
  lastBanAt: number;
  /** A peer at this IP that has not proven itself is not let in before this: [connecting to us, dialed by us]. */
  nextAdmitAt: [number, number];
}

export class PeerPool {
  readonly #peers = new Map<string, KnownPeer>();
  /** address:port -> why it was banned */
  readonly #banned = new Map<string, string>();
  /** identityKey(IP, peer id) -> why it was banned */
  readonly #bannedIds = new Map<string, string>();
  /** identityKeys and listening address:ports of peers whose data verified */
  readonly #proven = new Set<string>();
  readonly #ipBans = new Map<string, IpBans>();
  /** IP -> the keys of #peers at it that are not queued */
  readonly #perIp = new Map<string, Set<string>>();
  /** IP -> the keys of #peers at it that are queued, first come first */
  readonly #queued = new Map<string, Set<string>>();
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
   * through PEX cannot push out what trackers and the user gave; a queued
   * newcomer only replaces another queued one. At an IP that already has
   * MAX_KNOWN_PER_IP addresses (the user's are always taken), one of them
   * that failed and never connected makes room (the one that failed most,
   * then longest ago), else the newcomer queues (see the header).
   */
  add(addresses: readonly PeerAddress[], explicit = false, fromPex = false): number {
    let added = 0;
    for (const a of addresses) {
      if (!Number.isInteger(a.port) || a.port <= 0 || a.port > 65535) continue;
      const key = peerKey(a.host, a.port);
      if (this.#peers.has(key) || this.#banned.has(key)) continue;
      const ip = ipOf(a.host);
      // a failed address makes room: for the first that queued, else for this one
      if (!explicit && this.#activeAt(ip) >= MAX_KNOWN_PER_IP) this.#evictFailedAt(ip);
      const queued = !explicit && (this.#activeAt(ip) >= MAX_KNOWN_PER_IP || this.#queuedAt(ip) > 0);
      if (queued && this.#queuedAt(ip) >= MAX_QUEUED_PER_IP) continue;
      if (this.#peers.size >= MAX_KNOWN_PEERS) this.#evictOne(fromPex, queued);
      if (this.#peers.size >= MAX_KNOWN_PEERS) {
        if (queued) continue;
        break;
      }
      setOf(queued ? this.#queued : this.#perIp, ip).add(key);
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
        queued,
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
   * Addresses never tried come first, then retries of failed ones; queued
   * addresses never.
   */
  candidates(limit: number, minAgeMs = 0, perIp?: { readonly limit: number; readonly busy: Map<string, number> }): KnownPeer[] {
    const now = this.#now();
    const out: KnownPeer[] = [];
    for (const untried of [true, false]) {
      for (const p of this.#peers.values()) {
        if (out.length >= limit) return out;
        if (untried !== (p.failures === 0)) continue;
        if (p.queued || p.connected || p.connecting || p.nextAttemptAt > now || now - p.addedAt < minAgeMs) continue;
        if (perIp) {
          const ip = ipOf(p.host);
          const n = perIp.busy.get(ip) ?? 0;
          if (n >= perIp.limit) continue;
          perIp.busy.set(ip, n + 1);
        }
        out.push(p);
      }
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
    // a queued address that turned out to be a live peer (it connected to us) takes a place at once
    if (p.queued) this.#unqueue(p);
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
   * once it has been failing for KNOWN_FORGET_AFTER_MS. A peer that never
   * connected is forgotten at its first failure when addresses of its IP
   * queue: it makes room for the first of them.
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
    const forget =
      !p.explicit &&
      (!retry || (p.everConnected ? now - p.failingSince >= KNOWN_FORGET_AFTER_MS : p.failures > MAX_FAILURES || this.#queuedAt(ipOf(p.host)) > 0));
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
   * The peers closed for having nothing for us (markUnhelpful: two seeds)
   * may have something now (a piece of ours was lost from disk): dial them
   * again at once. Their count of such visits stays.
   */
  wakeUnhelpful(): void {
    for (const p of this.#peers.values()) if (p.unhelpful > 0 && !p.connected && !p.connecting) p.nextAttemptAt = 0;
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

  /**
   * Ban address:port `key` for good. With `who`, the peer behind it too: its
   * IP with its peer id, and its listening address, so neither a new
   * connection from another port nor a dial to that address lets it back
   * (see `admit`); and, unless `strike` is false (a banned peer caught
   * coming back, which cost us nothing), its IP counts one more ban towards
   * being suspect.
   */
  ban(key: string, reason: string, who?: PeerIdentity, strike = true): void {
    remember(this.#banned, key, reason);
    this.#forget(key);
    if (!who) return;
    if (who.peerId) remember(this.#bannedIds, identityKey(who.ip, who.peerId), reason);
    if (who.listen) {
      const listen = peerKey(who.listen.host, who.listen.port);
      remember(this.#banned, listen, reason);
      this.#forget(listen);
    }
    if (!strike) return;
    const now = this.#now();
    let rec = this.#ipBans.get(who.ip);
    if (!rec || now - rec.lastBanAt > IP_BAN_MEMORY_MS) rec = { bans: 0, lastBanAt: now, nextAdmitAt: [0, 0] };
    rec.bans++;
    rec.lastBanAt = now;
    // the window of the way it came restarts (both, when that is not known)
    const ways = who.incoming === undefined ? [0, 1] : [who.incoming ? 0 : 1];
    if (rec.bans >= SUSPECT_BANS) for (const w of ways) rec.nextAdmitAt[w] = Math.max(rec.nextAdmitAt[w]!, now + suspectWindow(rec.bans));
    this.#ipBans.delete(who.ip); // newest last: the oldest record is the one dropped
    remember(this.#ipBans, who.ip, rec);
  }

  isBanned(key: string): boolean {
    return this.#banned.has(key);
  }

  /** Why address:port `key` was banned (undefined: it was not). */
  banReason(key: string): string | undefined {
    return this.#banned.get(key);
  }

  /** Peers banned at this IP lately (within IP_BAN_MEMORY_MS of each other and of now). */
  bansAt(ip: string): number {
    const rec = this.#ipBans.get(ip);
    return rec && this.#now() - rec.lastBanAt <= IP_BAN_MEMORY_MS ? rec.bans : 0;
  }

  /**
   * A connection's handshake arrived (ours or theirs first): may it stay?
   * Refused when it is a banned peer (its IP and peer id, or its listening
   * address), or when its IP is suspect (SUSPECT_BANS bans there), the
   * peer has not proven itself and another newcomer at that IP was let in
   * the same way (`who.incoming`: connecting to us, or dialed by us), or a
   * peer that came that way banned there, less than the IP's window ago. A
   * newcomer let in at a suspect IP is on probation and starts a new
   * window; every other peer is not. The two ways have their own windows:
   * a peer that keeps connecting to us cannot use up the one of our own
   * dials (which only go to addresses we know, at most MAX_KNOWN_PER_IP of
   * an IP, a banned one never again). Honest peers at a suspect IP are
   * delayed, never shut out: those that proved themselves are let in at
   * once, the others one per window each way.
   */
  admit(who: PeerIdentity): Admission {
    const byId = who.peerId ? this.#bannedIds.get(identityKey(who.ip, who.peerId)) : undefined;
    const byListen = who.listen ? this.#banned.get(peerKey(who.listen.host, who.listen.port)) : undefined;
    const reason = byId ?? byListen;
    if (reason !== undefined) return { refused: `banned: ${reason}`, banned: true };
    const rec = this.#ipBans.get(who.ip);
    const now = this.#now();
    if (!rec || rec.bans < SUSPECT_BANS || now - rec.lastBanAt > IP_BAN_MEMORY_MS || this.isProven(who)) return { refused: undefined, probation: false };
    const way = who.incoming ? 0 : 1;
    if (now < rec.nextAdmitAt[way]!) {
      const window = Math.ceil(suspectWindow(rec.bans) / 1000);
      return { refused: `${rec.bans} peers at ${who.ip} were banned: one new peer from there is let in every ${window} s`, banned: false };
    }
    rec.nextAdmitAt[way] = now + suspectWindow(rec.bans);
    return { refused: undefined, probation: true };
  }

  /** A piece this peer sent blocks of verified: it is let in at once from now on, even from a suspect IP. */
  prove(who: PeerIdentity): void {
    if (who.peerId) rememberKey(this.#proven, identityKey(who.ip, who.peerId));
    if (who.listen) rememberKey(this.#proven, peerKey(who.listen.host, who.listen.port));
  }

  isProven(who: PeerIdentity): boolean {
    if (who.peerId && this.#proven.has(identityKey(who.ip, who.peerId))) return true;
    return who.listen !== undefined && this.#proven.has(peerKey(who.listen.host, who.listen.port));
  }

  /**
   * Forget the oldest idle queued peer, then the oldest idle PEX peer, else
   * (unless `pexOnly`) the oldest idle peer the user did not give; with
   * `queuedOnly`, only a queued one.
   */
  #evictOne(pexOnly: boolean, queuedOnly: boolean): void {
    for (const queued of queuedOnly ? [true] : [true, false]) {
      for (const pex of pexOnly ? [true] : [true, false]) {
        const keys = queued ? [...this.#queued.values()].flatMap((set) => [...set]) : this.#peers.keys();
        for (const key of keys) {
          const p = this.#peers.get(key)!;
          if (p.connected || p.connecting || p.explicit || (pex && !p.fromPex)) continue;
          this.#forget(key);
          return;
        }
      }
    }
  }

  /** Addresses of `ip` that are not queued. */
  #activeAt(ip: string): number {
    return this.#perIp.get(ip)?.size ?? 0;
  }

  #queuedAt(ip: string): number {
    return this.#queued.get(ip)?.size ?? 0;
  }

  /** Forget the idle address of `ip` that failed most (then longest ago) and never connected, if there is one. */
  #evictFailedAt(ip: string): void {
    let worst: KnownPeer | undefined;
    for (const key of this.#perIp.get(ip) ?? []) {
      const p = this.#peers.get(key)!;
      if (p.connected || p.connecting || p.explicit || p.everConnected || p.failures === 0) continue;
      if (!worst || p.failures > worst.failures || (p.failures === worst.failures && p.failingSince! < worst.failingSince!)) worst = p;
    }
    if (worst) this.#forget(worst.key);
  }

  #unqueue(p: KnownPeer): void {
    const ip = ipOf(p.host);
    dropFrom(this.#queued, ip, p.key);
    p.queued = false;
    setOf(this.#perIp, ip).add(p.key);
  }

  #forget(key: string): void {
    const p = this.#peers.get(key);
    if (!p) return;
    this.#peers.delete(key);
    const ip = ipOf(p.host);
    if (p.queued) {
      dropFrom(this.#queued, ip, key);
      return;
    }
    dropFrom(this.#perIp, ip, key);
    // its place goes to the first address of its IP that queued
    const next = this.#queued.get(ip)?.values().next().value;
    if (next !== undefined && this.#activeAt(ip) < MAX_KNOWN_PER_IP) this.#unqueue(this.#peers.get(next)!);
  }
}

function setOf(map: Map<string, Set<string>>, ip: string): Set<string> {
  let set = map.get(ip);
  if (!set) map.set(ip, (set = new Set()));
  return set;
}

function dropFrom(map: Map<string, Set<string>>, ip: string, key: string): void {
  const set = map.get(ip);
  if (!set) return;
  set.delete(key);
  if (set.size === 0) map.delete(ip);
}

/** A peer's identity across its connections: its IP and the peer id of its handshake. */
function identityKey(ip: string, peerId: Buffer): string {
  return `${ip}|${peerId.toString('hex')}`;
}

/** How long a suspect IP with `bans` bans waits between newcomers: 10 s, doubling per ban beyond SUSPECT_BANS, at most 5 min. */
export function suspectWindow(bans: number): number {
  return Math.min(MAX_SUSPECT_WINDOW_MS, SUSPECT_WINDOW_MS * 2 ** Math.min(Math.max(0, bans - SUSPECT_BANS), 16));
}

/** Set key -> value in a map kept to MAX_BAN_RECORDS entries (the oldest goes). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > MAX_BAN_RECORDS) map.delete(map.keys().next().value!);
}

function rememberKey(set: Set<string>, key: string): void {
  set.add(key);
  if (set.size > MAX_BAN_RECORDS) set.delete(set.values().next().value!);
}
