/**
 * A DHT node on one UDP socket (BEP 5, IPv4): sends queries and matches the
 * answers (by transaction id and sender address), answers other nodes' ping,
 * find_node, get_peers and announce_peer within per-address and global rate
 * limits, keeps the routing table fresh, and runs lookups (bootstrap, and
 * get_peers + announce_peer for a torrent). Everything it holds is bounded;
 * the routing policy lives in routing-table.ts, lookup.ts and store.ts.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { isUsablePeerAddress } from '../core/compact-peer.js';
import type { PeerAddress } from '../core/peer-address.js';
import {
  encodeError,
  encodeQuery,
  encodeResponse,
  KRPC_ERROR,
  KrpcError,
  parseKrpc,
  type CompactNode,
  type DhtPeer,
  type KrpcQuery,
  type KrpcResponseBody,
} from './krpc.js';
import { Lookup, type Contact } from './lookup.js';
import { K, randomIdInBucket, RoutingTable, QUESTIONABLE_AFTER_MS } from './routing-table.js';
import { PeerStore, TokenIssuer } from './store.js';

/** Public routers used when none are given (the ones libtorrent, Transmission and aria2 start from). */
export const DEFAULT_BOOTSTRAP: readonly PeerAddress[] = [
  { host: 'router.bittorrent.com', port: 6881 },
  { host: 'dht.transmissionbt.com', port: 6881 },
  { host: 'router.utorrent.com', port: 6881 },
];
export const QUERY_TIMEOUT_MS = 2_000;
/** Queries of ours awaiting an answer at once; more wait for a free slot. */
export const MAX_PENDING_QUERIES = 64;
/** Incoming queries answered per second per address (burst: twice that). */
export const QUERIES_PER_ADDRESS_PER_S = 20;
/** Incoming queries answered per second in all. */
export const QUERIES_PER_S = 500;
/** Addresses whose rate we track; beyond it the oldest are forgotten. */
const MAX_RATE_ENTRIES = 4096;
/** How often buckets nobody has been heard from get refreshed, and the store expired. */
export const MAINTENANCE_INTERVAL_MS = 5 * 60_000;
/** A whole lookup gives up after this long. */
export const LOOKUP_DEADLINE_MS = 30_000;

export interface DhtNodeOptions {
  /** Address to bind (default 0.0.0.0). */
  host?: string;
  /** UDP port (0 = any). */
  port?: number;
  /** Where to start when the routing table is empty; names are resolved (IPv4). */
  bootstrap?: readonly PeerAddress[];
  nodeId?: Buffer;
  queryTimeoutMs?: number;
  /**
   * Incoming queries answered per second per address (default
   * QUERIES_PER_ADDRESS_PER_S). Many nodes on one host share an address: a
   * test network on loopback raises it.
   */
  queriesPerAddressPerS?: number;
}

export interface DhtNodeEvents {
  warning: [message: string];
}

export interface GetPeersResult {
  readonly peers: DhtPeer[];
  readonly queried: number;
  /** Nodes announce_peer was sent to (and answered). */
  readonly announcedTo: number;
}

interface Pending {
  readonly host: string;
  readonly port: number;
  readonly resolve: (r: KrpcResponseBody | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

/** Addresses a node may claim to be reachable at: IPv4, not 0.x, not multicast or broadcast. */
export function isUsableNodeAddress(host: string, port: number): boolean {
  return isIP(host) === 4 && isUsablePeerAddress(host, port);
}

export class DhtNode extends EventEmitter<DhtNodeEvents> {
  readonly id: Buffer;
  readonly table: RoutingTable;
  readonly store = new PeerStore();
  readonly #tokens = new TokenIssuer(Date.now());
  readonly #opts: DhtNodeOptions;
  readonly #socket: dgram.Socket;
  readonly #pending = new Map<string, Pending>();
  readonly #waiting: Array<() => void> = [];
  readonly #rates = new Map<string, { tokens: number; at: number }>();
  #global = { tokens: QUERIES_PER_S, at: performance.now() };
  #nextTid = Math.floor(Math.random() * 0x10000);
  #bootstrap: Promise<Contact[]> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  #port = 0;

  constructor(opts: DhtNodeOptions = {}) {
    super();
    this.#opts = opts;
    this.id = opts.nodeId ?? randomBytes(20);
    this.table = new RoutingTable(this.id);
    this.#socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    this.#socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo.address, rinfo.port));
    this.#socket.on('error', (err) => this.emit('warning', `DHT socket: ${err.message}`));
  }

  get port(): number {
    return this.#port;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bind the socket, then start bootstrapping in the background. */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#socket.once('error', onError);
      this.#socket.bind({ address: this.#opts.host ?? '0.0.0.0', port: this.#opts.port ?? 0, exclusive: true }, () => {
        this.#socket.off('error', onError);
        resolve();
      });
    });
    this.#port = this.#socket.address().port;
    const t = setInterval(() => this.#maintain(), MAINTENANCE_INTERVAL_MS);
    t.unref();
    this.#timers.push(t);
    void this.bootstrap();
  }

  /** Fill the routing table: a lookup of our own id from the bootstrap nodes. Resolves when it ends. */
  async bootstrap(): Promise<void> {
    const seeds = await this.#bootstrapContacts();
    if (this.#closed) return;
    const lookup = new Lookup(this.id, [...this.#tableContacts(this.id, K * 2), ...seeds], { ignore: (h, p) => this.#isSelf(h, p) });
    await this.#run(lookup, (id) => ({ q: 'find_node', id: this.id, target: id }));
  }

  /**
   * Find peers for `infoHash` (an iterative get_peers), then announce
   * `announcePort` to the closest nodes that gave a token (unless undefined).
   * `onPeers` sees peers as they arrive.
   */
  async getPeers(infoHash: Buffer, opts: { announcePort?: number | undefined; onPeers?: (peers: DhtPeer[]) => void } = {}): Promise<GetPeersResult> {
    const seeds = await this.#bootstrapContacts();
    if (this.#closed) return { peers: [], queried: 0, announcedTo: 0 };
    const lookup = new Lookup(infoHash, [...this.#tableContacts(infoHash, K * 2), ...seeds], { ignore: (h, p) => this.#isSelf(h, p) });
    // peers announced to this very node are in no other node's answer (libtorrent announces to whoever is closest, us included)
    const stored = this.store.peers(infoHash, Date.now());
    // the caller's callback runs inside our promise chains: its exception must not stall the lookup
    const report = (peers: DhtPeer[]): void => {
      try {
        opts.onPeers?.(peers);
      } catch (err) {
        this.emit('warning', `DHT: ${(err as Error).message}`);
      }
    };
    if (stored.length > 0) report(stored);
    let reported = 0;
    await this.#run(lookup, () => ({ q: 'get_peers', id: this.id, infoHash }), () => {
      const peers = lookup.peers;
      if (peers.length > reported) {
        report(peers.slice(reported));
        reported = peers.length;
      }
    });
    let announcedTo = 0;
    if (opts.announcePort !== undefined && !this.#closed) {
      const port = opts.announcePort;
      const answers = await Promise.all(
        lookup.announceTargets().map((n) =>
          this.query(n, { q: 'announce_peer', id: this.id, infoHash, port, impliedPort: false, token: n.token }),
        ),
      );
      announcedTo = answers.filter(Boolean).length;
    }
    return { peers: [...stored, ...lookup.peers], queried: lookup.queriesSent, announcedTo };
  }

  /**
   * A node learnt outside the DHT (a peer's PORT message, BEP 5): ping it, and
   * it joins the routing table if it answers. Skipped when many queries are
   * already waiting, so peers cannot make us queue pings without bound.
   */
  addNode(host: string, port: number): void {
    if (this.#closed || !isUsableNodeAddress(host, port) || this.#isSelf(host, port)) return;
    if (this.#pending.size >= MAX_PENDING_QUERIES / 2) return;
    void this.query({ host, port }, { q: 'ping', id: this.id });
  }

  /** Send one query; resolves with the answer, or undefined on timeout, error reply or close. */
  async query(to: { host: string; port: number }, query: KrpcQuery): Promise<KrpcResponseBody | undefined> {
    while (this.#pending.size >= MAX_PENDING_QUERIES && !this.#closed) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    if (this.#closed) return undefined;
    const t = this.#newTid();
    const tidKey = t.toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#settle(tidKey, undefined), this.#opts.queryTimeoutMs ?? QUERY_TIMEOUT_MS);
      this.#pending.set(tidKey, { host: to.host, port: to.port, resolve, timer });
      this.#send(encodeQuery(t, query), to.host, to.port);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    for (const key of [...this.#pending.keys()]) this.#settle(key, undefined);
    for (const wake of this.#waiting.splice(0)) wake();
    await new Promise<void>((resolve) => {
      try {
        this.#socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  // ---- lookups ----

  /** Drive a lookup to its end (bounded by its query budget and LOOKUP_DEADLINE_MS). */
  async #run(lookup: Lookup, makeQuery: (target: Buffer) => KrpcQuery, onProgress?: () => void): Promise<void> {
    const deadline = Date.now() + LOOKUP_DEADLINE_MS;
    await new Promise<void>((resolve) => {
      let inFlight = 0;
      const pump = (): void => {
        if (this.#closed || Date.now() > deadline || lookup.done) {
          if (inFlight === 0 || this.#closed || Date.now() > deadline) resolve();
          return;
        }
        for (const c of lookup.next()) {
          inFlight++;
          void this.query(c, makeQuery(lookup.target)).then((r) => {
            inFlight--;
            if (r) {
              const values = r.values?.filter((p) => isUsableNodeAddress(p.host, p.port));
              lookup.answered(c.host, c.port, r.id, (r.nodes ?? []).filter((n) => isUsableNodeAddress(n.host, n.port)), values, r.token);
              onProgress?.();
            } else {
              lookup.failed(c.host, c.port);
              if (c.id) this.table.failed(c.id);
            }
            pump();
          });
        }
        if (inFlight === 0 && lookup.done) resolve();
      };
      pump();
    });
  }

  #tableContacts(target: Buffer, count: number): Contact[] {
    return this.table.closest(target, count).map((e) => ({ host: e.host, port: e.port, id: e.id }));
  }

  /** The bootstrap nodes, names resolved once (IPv4); unresolvable ones are dropped with a warning. */
  #bootstrapContacts(): Promise<Contact[]> {
    this.#bootstrap ??= (async () => {
      const out: Contact[] = [];
      for (const b of this.#opts.bootstrap ?? DEFAULT_BOOTSTRAP) {
        if (isIP(b.host) === 4) {
          out.push({ host: b.host, port: b.port });
          continue;
        }
        try {
          const { address } = await dnsLookup(b.host, { family: 4 });
          out.push({ host: address, port: b.port });
        } catch (err) {
          this.emit('warning', `DHT bootstrap node ${b.host}: ${(err as Error).message}`);
        }
      }
      return out;
    })();
    return this.#bootstrap;
  }

  #maintain(): void {
    if (this.#closed) return;
    const now = Date.now();
    this.store.expire(now);
    for (const bucket of this.table.staleBuckets(now - QUESTIONABLE_AFTER_MS).slice(0, 8)) {
      const target = randomIdInBucket(this.id, bucket, randomBytes);
      const lookup = new Lookup(target, this.#tableContacts(target, K), { maxQueries: 16, ignore: (h, p) => this.#isSelf(h, p) });
      void this.#run(lookup, (id) => ({ q: 'find_node', id: this.id, target: id }));
    }
  }

  #isSelf(host: string, port: number): boolean {
    if (port !== this.#port) return false;
    const bound = this.#opts.host ?? '0.0.0.0';
    return host === bound || host.startsWith('127.') || (bound === '0.0.0.0' && host === '0.0.0.0');
  }

  // ---- datagrams ----

  #newTid(): Buffer {
    for (let i = 0; i < 0x10000; i++) {
      this.#nextTid = (this.#nextTid + 1) & 0xffff;
      const t = Buffer.from([this.#nextTid >> 8, this.#nextTid & 0xff]);
      if (!this.#pending.has(t.toString('hex'))) return t;
    }
    return randomBytes(4);
  }

  #settle(tidKey: string, r: KrpcResponseBody | undefined): void {
    const p = this.#pending.get(tidKey);
    if (!p) return;
    this.#pending.delete(tidKey);
    clearTimeout(p.timer);
    p.resolve(r);
    this.#waiting.shift()?.();
  }

  #send(buf: Buffer, host: string, port: number): void {
    if (this.#closed) return;
    try {
      this.#socket.send(buf, port, host, () => undefined);
    } catch {
      // socket closing, or a bad address: the query times out like any other
    }
  }

  #onMessage(msg: Buffer, host: string, port: number): void {
    if (this.#closed) return;
    let m;
    try {
      m = parseKrpc(msg);
    } catch (err) {
      // a malformed query with a readable transaction id gets a protocol error (rate-limited); anything else is dropped
      // (never in reply to a malformed response or error: two nodes could bounce errors forever)
      if (err instanceof KrpcError && err.answerable && err.t && this.#admit(host)) this.#send(encodeError(err.t, KRPC_ERROR.protocol, err.message), host, port);
      return;
    }
    const now = Date.now();
    switch (m.y) {
      case 'r': {
        const key = m.t.toString('hex');
        const p = this.#pending.get(key);
        // an answer counts only from the address we asked: anyone can send a datagram with a guessed id
        if (!p || p.host !== host || p.port !== port) return;
        if (isUsableNodeAddress(host, port)) this.table.seen({ id: m.response.id, host, port }, now, true);
        this.#settle(key, m.response);
        return;
      }
      case 'e': {
        const key = m.t.toString('hex');
        const p = this.#pending.get(key);
        if (p && p.host === host && p.port === port) this.#settle(key, undefined);
        return;
      }
      case 'unknown-method':
        if (this.#admit(host)) this.#send(encodeError(m.t, KRPC_ERROR.methodUnknown, 'method unknown'), host, port);
        return;
      case 'q':
        if (!this.#admit(host)) return;
        // read-only nodes (BEP 43) are not added: they do not answer queries. A querier joins
        // unverified (never handed to others) and is pinged: answering from its address verifies it
        if (!m.readOnly && isUsableNodeAddress(host, port) && this.table.seen({ id: m.query.id, host, port }, now, false)) {
          if (this.table.shouldVerify(m.query.id, now)) this.addNode(host, port);
        }
        this.#answer(m.t, m.query, host, port, now);
        return;
    }
  }

  #answer(t: Buffer, q: KrpcQuery, host: string, port: number, now: number): void {
    const requester = { host, port };
    switch (q.q) {
      case 'ping':
        this.#send(encodeResponse(t, { id: this.id }, requester), host, port);
        return;
      case 'find_node':
        this.#send(encodeResponse(t, { id: this.id, nodes: this.#closestNodes(q.target) }, requester), host, port);
        return;
      case 'get_peers': {
        const token = this.#tokens.issue(host, now);
        const values = this.store.values(q.infoHash, now);
        const fields = values.length > 0 ? { id: this.id, token, values } : { id: this.id, token, nodes: this.#closestNodes(q.infoHash) };
        this.#send(encodeResponse(t, fields, requester), host, port);
        return;
      }
      case 'announce_peer': {
        if (!this.#tokens.valid(q.token, host, now)) {
          this.#send(encodeError(t, KRPC_ERROR.protocol, 'bad token'), host, port);
          return;
        }
        this.store.add(q.infoHash, host, q.impliedPort ? port : q.port, now);
        this.#send(encodeResponse(t, { id: this.id }, requester), host, port);
        return;
      }
    }
  }

  #closestNodes(target: Buffer): CompactNode[] {
    return this.table.closest(target, K, true);
  }

  /** Token buckets: per address and global. False = drop the datagram unanswered. */
  #admit(host: string): boolean {
    // a monotonic clock: a wall-clock step back must not drain the buckets
    const now = performance.now();
    const g = this.#global;
    g.tokens = Math.min(QUERIES_PER_S, g.tokens + ((now - g.at) / 1000) * QUERIES_PER_S);
    g.at = now;
    if (g.tokens < 1) return false;
    const rate = this.#opts.queriesPerAddressPerS ?? QUERIES_PER_ADDRESS_PER_S;
    let r = this.#rates.get(host);
    if (r) {
      // most recently active last
      this.#rates.delete(host);
    } else {
      // forget the address quiet longest (clearing all would refill every attacker's bucket at once)
      if (this.#rates.size >= MAX_RATE_ENTRIES) this.#rates.delete(this.#rates.keys().next().value as string);
      r = { tokens: 2 * rate, at: now };
    }
    this.#rates.set(host, r);
    r.tokens = Math.min(2 * rate, r.tokens + ((now - r.at) / 1000) * rate);
    r.at = now;
    if (r.tokens < 1) return false;
    r.tokens--;
    g.tokens--;
    return true;
  }
}
