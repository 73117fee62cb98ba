/**
 * Iterative DHT lookup (BEP 5 / Kademlia) as a pure state machine, driven
 * against simulated networks of a few hundred nodes: it finds the true K
 * closest live nodes to the target (checked by brute force) in a modest number
 * of queries, never has more than ALPHA queries in flight, never asks a node
 * twice, stops, and never exceeds its query budget; nodes that time out are
 * skipped; get_peers values are collected once each; announceTargets returns
 * only answered nodes with tokens, closest first, at most K; bootstrap contacts
 * without an id are asked first; `ignore` keeps addresses out; the candidate
 * list stays bounded (the closest kept) when answers name thousands of nodes.
 */
import { describe, expect, it } from 'vitest';
import type { CompactNode, DhtPeer } from '../../../src/dht/krpc.js';
import { ALPHA, Lookup, MAX_CANDIDATES, MAX_LOOKUP_QUERIES, type Contact } from '../../../src/dht/lookup.js';
import { K, RoutingTable, distance } from '../../../src/dht/routing-table.js';
import { mulberry32 } from '../../helpers/prng.js';

const addr = (host: string, port: number): string => `${host}:${port}`;

function seededBytes(rnd: () => number): (n: number) => Buffer {
  return (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
    return b;
  };
}

function byDistance<T extends { id: Buffer }>(target: Buffer, nodes: readonly T[]): T[] {
  return [...nodes].sort((a, b) => Buffer.compare(distance(a.id, target), distance(b.id, target)));
}

interface SimNode extends CompactNode {
  /** Undefined: the node never answers (times out). */
  answer?: (target: Buffer) => CompactNode[];
  values?: DhtPeer[];
  token?: Buffer;
}

interface Network {
  nodes: SimNode[];
  byAddress: Map<string, SimNode>;
}

function makeNodes(count: number, rnd: () => number): SimNode[] {
  const bytes = seededBytes(rnd);
  return Array.from({ length: count }, (_, i) => ({
    id: bytes(20),
    host: `10.${(i >> 8) & 255}.${i & 255}.${1 + (i % 200)}`,
    port: 1024 + i,
    token: Buffer.from(`tok${i}`),
  }));
}

function index(nodes: SimNode[]): Network {
  return { nodes, byAddress: new Map(nodes.map((n) => [addr(n.host, n.port), n])) };
}

/** Every node answers with the K closest to the target over the whole network (an oracle). */
function oracleNetwork(count: number, seed: number): Network {
  const nodes = makeNodes(count, mulberry32(seed));
  const plain = nodes.map(({ id, host, port }) => ({ id, host, port }));
  for (const n of nodes) n.answer = (target) => byDistance(target, plain).slice(0, K);
  return index(nodes);
}

/** Every node answers from its own Kademlia routing table (K per bucket): a partial, realistic view. */
function kademliaNetwork(count: number, seed: number): Network {
  const rnd = mulberry32(seed);
  const nodes = makeNodes(count, rnd);
  for (const n of nodes) {
    const table = new RoutingTable(n.id);
    // each node met the others in its own random order
    const order = [...nodes].sort(() => rnd() - 0.5);
    for (const o of order) table.seen({ id: o.id, host: o.host, port: o.port }, 0);
    n.answer = (target) => table.closest(target, K).map(({ id, host, port }) => ({ id, host, port }));
  }
  return index(nodes);
}

interface RunResult {
  queried: string[];
  answered: string[];
  maxInFlight: number;
}

/**
 * Drive a lookup to completion: hand out what next() gives, answer the
 * pending queries in a random order (a dead or unknown address times out).
 */
function drive(lookup: Lookup, net: Network, rnd: () => number, dead: ReadonlySet<string> = new Set()): RunResult {
  const pending: Contact[] = [];
  const queried = new Set<string>();
  const answered: string[] = [];
  let maxInFlight = 0;
  for (let guard = 0; guard < 100_000; guard++) {
    for (const c of lookup.next()) {
      const k = addr(c.host, c.port);
      expect(queried.has(k), `${k} asked twice`).toBe(false);
      queried.add(k);
      pending.push(c);
    }
    maxInFlight = Math.max(maxInFlight, pending.length);
    expect(pending.length).toBeLessThanOrEqual(ALPHA);
    if (pending.length === 0) {
      expect(lookup.done).toBe(true);
      return { queried: [...queried], answered, maxInFlight };
    }
    expect(lookup.done).toBe(false);
    const [c] = pending.splice(Math.floor(rnd() * pending.length), 1);
    const k = addr(c!.host, c!.port);
    const node = net.byAddress.get(k);
    if (!node?.answer || dead.has(k)) {
      lookup.failed(c!.host, c!.port);
    } else {
      answered.push(k);
      lookup.answered(node.host, node.port, node.id, node.answer(lookup.target), node.values, node.token);
    }
  }
  throw new Error('lookup did not finish');
}

const keysOf = (nodes: readonly { host: string; port: number }[]): string[] => nodes.map((n) => addr(n.host, n.port));

describe('Lookup against simulated networks', () => {
  it('oracle network: finds the true K closest, few queries, at most ALPHA in flight', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const net = oracleNetwork(300, seed);
      const rnd = mulberry32(seed * 101);
      const target = seededBytes(rnd)(20);
      const seeds = [0, 1, 2].map((i) => net.nodes[Math.floor(rnd() * 300)]!).map(({ id, host, port }) => ({ id, host, port }));
      const lookup = new Lookup(target, seeds);
      const run = drive(lookup, net, rnd);
      const truth = keysOf(byDistance(target, net.nodes).slice(0, K));
      expect(keysOf(lookup.announceTargets())).toEqual(truth);
      expect(run.maxInFlight).toBe(ALPHA);
      // 3 seeds, then the K closest (and at most ALPHA-1 more that were already in flight)
      expect(lookup.queriesSent).toBeLessThanOrEqual(3 + K + ALPHA);
      expect(lookup.queriesSent).toBe(run.queried.length);
      expect(lookup.done).toBe(true);
      expect(lookup.next()).toEqual([]);
    }
  });

  it('Kademlia network (each node answers from its own routing table): still the true K closest', () => {
    const queries: number[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const net = kademliaNetwork(300, 1000 + seed);
      const rnd = mulberry32(seed * 7);
      const bytes = seededBytes(rnd);
      for (let t = 0; t < 4; t++) {
        const target = bytes(20);
        const start = net.nodes[Math.floor(rnd() * net.nodes.length)]!;
        const lookup = new Lookup(target, [{ host: start.host, port: start.port, id: start.id }]);
        drive(lookup, net, rnd);
        expect(keysOf(lookup.announceTargets())).toEqual(keysOf(byDistance(target, net.nodes).slice(0, K)));
        queries.push(lookup.queriesSent);
      }
    }
    // a lookup in 300 nodes takes a dozen or so queries, nowhere near the budget
    expect(Math.max(...queries)).toBeLessThanOrEqual(30);
    expect(queries.reduce((a, b) => a + b) / queries.length).toBeLessThan(20);
  });

  it('nodes that time out are skipped: the result is the K closest live nodes', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const rnd = mulberry32(seed * 13);
      const nodes = makeNodes(300, rnd);
      const target = seededBytes(rnd)(20);
      // a quarter of the network is dead, including the four very closest
      const dead = new Set<string>();
      const sorted = byDistance(target, nodes);
      for (const n of sorted.slice(0, 4)) dead.add(addr(n.host, n.port));
      for (const n of nodes) if (rnd() < 0.25) dead.add(addr(n.host, n.port));
      const live = nodes.filter((n) => !dead.has(addr(n.host, n.port)));
      const gone = nodes.filter((n) => dead.has(addr(n.host, n.port)));
      // every answer names the K closest live nodes it knows and the K closest dead ones (stale entries),
      // each node's knowledge being a random half of the network
      for (const n of nodes) {
        const known = nodes.filter(() => rnd() < 0.5);
        const knownLive = known.filter((o) => !dead.has(addr(o.host, o.port)));
        const knownDead = known.filter((o) => dead.has(addr(o.host, o.port)));
        n.answer = (t) =>
          [...byDistance(t, knownLive).slice(0, K), ...byDistance(t, knownDead).slice(0, K)]
            .sort(() => rnd() - 0.5)
            .map(({ id, host, port }) => ({ id, host, port }));
      }
      const net = index(nodes);
      const start = live[Math.floor(rnd() * live.length)]!;
      const lookup = new Lookup(target, [start]);
      const run = drive(lookup, net, rnd, dead);
      expect(keysOf(lookup.announceTargets())).toEqual(keysOf(byDistance(target, live).slice(0, K)));
      // the closer dead nodes were tried (once each: drive() checks) and skipped
      const triedDead = run.queried.filter((k) => dead.has(k));
      expect(triedDead.length).toBeGreaterThanOrEqual(4);
      expect(gone.length).toBeGreaterThan(50);
      for (const t of lookup.announceTargets()) expect(dead.has(addr(t.host, t.port))).toBe(false);
      expect(lookup.queriesSent).toBeLessThanOrEqual(40);
    }
  });

  it('Kademlia network with dead nodes still in the tables: the K closest live nodes it learned of, mostly the true ones', () => {
    let found = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const net = kademliaNetwork(300, 2000 + seed);
      const rnd = mulberry32(seed * 17);
      const target = seededBytes(rnd)(20);
      const dead = new Set<string>();
      for (const n of net.nodes) if (rnd() < 0.2) dead.add(addr(n.host, n.port));
      const live = net.nodes.filter((n) => !dead.has(addr(n.host, n.port)));
      const lookup = new Lookup(target, [live[0]!]);
      const run = drive(lookup, net, rnd, dead);
      // everything it heard of: nothing closer that was alive can have been passed over
      const learned = new Set([addr(live[0]!.host, live[0]!.port)]);
      for (const k of run.answered) for (const n of net.byAddress.get(k)!.answer!(target)) learned.add(addr(n.host, n.port));
      const liveLearned = live.filter((n) => learned.has(addr(n.host, n.port)));
      const got = lookup.announceTargets();
      expect(keysOf(got)).toEqual(keysOf(byDistance(target, liveLearned).slice(0, K)));
      const truth = new Set(keysOf(byDistance(target, live).slice(0, K)));
      found += keysOf(got).filter((k) => truth.has(k)).length;
    }
    // stale entries for dead nodes crowd some live ones out of every reply (inherent to
    // Kademlia without eviction), but most of the true K closest are still found
    expect(found).toBeGreaterThanOrEqual(6 * K - 4);
  });

  it('stops at maxQueries, even in a network where nobody answers', () => {
    const net = oracleNetwork(300, 9);
    const rnd = mulberry32(9);
    const target = seededBytes(rnd)(20);
    // only the first answer names nodes, then everybody times out
    const first = net.nodes[0]!;
    const everyone = net.nodes.map(({ id, host, port }) => ({ id, host, port }));
    const lookup = new Lookup(target, [first], { maxQueries: 10 });
    const [c] = lookup.next();
    lookup.answered(c!.host, c!.port, first.id, everyone.slice(0, 150), undefined, Buffer.from('t'));
    const silent: Network = { nodes: [], byAddress: new Map() };
    drive(lookup, silent, rnd);
    expect(lookup.queriesSent).toBe(10);
    expect(lookup.done).toBe(true);
    expect(lookup.announceTargets()).toHaveLength(1);

    // the default budget applies too
    const big = new Lookup(target, [first]);
    const [d] = big.next();
    big.answered(d!.host, d!.port, first.id, everyone);
    drive(big, silent, rnd);
    expect(big.queriesSent).toBeLessThanOrEqual(MAX_LOOKUP_QUERIES);
    expect(big.done).toBe(true);
  });

  it('collects get_peers values without duplicates', () => {
    const net = kademliaNetwork(300, 31);
    const rnd = mulberry32(31);
    const target = seededBytes(rnd)(20);
    // the 30 nodes closest to the target each know a few peers, overlapping
    const peer = (i: number): DhtPeer => ({ host: `192.0.2.${i}`, port: 6881 });
    byDistance(target, net.nodes)
      .slice(0, 30)
      .forEach((n, i) => {
        n.values = [peer(i % 5), peer(10 + (i % 7)), peer(i % 5)];
      });
    const lookup = new Lookup(target, [net.nodes[0]!]);
    const run = drive(lookup, net, rnd);
    const expected = new Set<string>();
    for (const k of run.answered) for (const p of net.byAddress.get(k)!.values ?? []) expected.add(addr(p.host, p.port));
    expect(expected.size).toBeGreaterThan(3);
    const got = keysOf(lookup.peers);
    expect(new Set(got).size).toBe(got.length);
    expect(new Set(got)).toEqual(expected);
  });
});

describe('Lookup mechanics', () => {
  const rnd = mulberry32(77);
  const bytes = seededBytes(rnd);
  const target = bytes(20);
  /** A node at XOR distance `d` (a small number in the last bytes) from the target. */
  const near = (d: number, i = d): Contact & { id: Buffer } => {
    const id = Buffer.from(target);
    id[19] = id[19]! ^ (d & 0xff);
    id[18] = id[18]! ^ ((d >> 8) & 0xff);
    return { id, host: `10.1.${(i >> 8) & 255}.${i & 255}`, port: 6881 };
  };

  it('refuses a target that is not 20 bytes', () => {
    expect(() => new Lookup(Buffer.alloc(19), [])).toThrow(RangeError);
  });

  it('with no seeds it is done at once', () => {
    const l = new Lookup(target, []);
    expect(l.done).toBe(true);
    expect(l.next()).toEqual([]);
    expect(l.announceTargets()).toEqual([]);
  });

  it('asks the closest first, ALPHA at a time, and only as answers come back', () => {
    const seeds = [near(50), near(3), near(900), near(7), near(20)];
    const l = new Lookup(target, seeds);
    expect(keysOf(l.next())).toEqual(keysOf([near(3), near(7), near(20)]));
    expect(l.next()).toEqual([]); // ALPHA in flight
    l.answered(near(7).host, 6881, near(7).id, []);
    expect(keysOf(l.next())).toEqual(keysOf([near(50)]));
    // a second answer from the same node, or one from a node never asked, changes nothing
    l.answered(near(7).host, 6881, near(7).id, []);
    l.answered(near(900).host, 6881, near(900).id, []);
    l.failed(near(7).host, 6881);
    expect(l.next()).toEqual([]);
    l.failed(near(3).host, 6881);
    expect(keysOf(l.next())).toEqual(keysOf([near(900)]));
    expect(l.queriesSent).toBe(5);
    expect(l.done).toBe(false); // three still in flight
    for (const n of [near(20), near(50), near(900)]) l.answered(n.host, 6881, n.id, []);
    expect(l.done).toBe(true);
  });

  it('honours custom k and alpha', () => {
    const seeds = Array.from({ length: 10 }, (_, i) => near(i + 1));
    const l = new Lookup(target, seeds, { k: 2, alpha: 1 });
    const asked: string[] = [];
    for (;;) {
      const batch = l.next();
      expect(batch.length).toBeLessThanOrEqual(1);
      if (batch.length === 0) break;
      asked.push(...keysOf(batch));
      l.answered(batch[0]!.host, batch[0]!.port, batch[0]!.id!, [], undefined, Buffer.from('t'));
    }
    expect(asked).toEqual(keysOf([near(1), near(2)]));
    expect(keysOf(l.announceTargets())).toEqual(keysOf([near(1), near(2)]));
  });

  it('bootstrap contacts without an id are asked first; their answer gives them their place', () => {
    const boot1 = { host: '203.0.113.1', port: 6881 };
    const boot2 = { host: '203.0.113.2', port: 6881 };
    const l = new Lookup(target, [near(1), near(2), boot1, near(3), boot2]);
    const first = l.next();
    expect(keysOf(first.slice(0, 2)).sort()).toEqual(keysOf([boot1, boot2]).sort());
    expect(first[0]!.id).toBeUndefined();
    expect(keysOf(first.slice(2))).toEqual(keysOf([near(1)]));
    // boot1 turns out to be the closest node of all; boot2 the farthest
    const boot1Id = Buffer.from(target);
    const boot2Id = Buffer.from(target);
    boot2Id[0] = target[0]! ^ 0x80;
    l.answered(boot1.host, boot1.port, boot1Id, [], undefined, Buffer.from('b1'));
    l.answered(boot2.host, boot2.port, boot2Id, [], undefined, Buffer.from('b2'));
    l.answered(near(1).host, 6881, near(1).id, [], undefined, Buffer.from('n1'));
    const rest = l.next();
    expect(keysOf(rest)).toEqual(keysOf([near(2), near(3)]));
    for (const c of rest) l.answered(c.host, c.port, c.id!, [], undefined, Buffer.from('x'));
    expect(l.done).toBe(true);
    expect(l.announceTargets().map((t) => t.token.toString())).toEqual(['b1', 'n1', 'x', 'x', 'b2']);
    expect(l.announceTargets()[0]!.id).toEqual(boot1Id);
  });

  it('announceTargets: only answered nodes with a token, closest first, at most K', () => {
    const seeds = Array.from({ length: 30 }, (_, i) => near(i + 1));
    const l = new Lookup(target, seeds, { alpha: 30 });
    const batch = l.next();
    expect(batch).toHaveLength(30); // alpha 30: all at once
    for (const c of batch) {
      const d = c.id![19]! ^ target[19]!;
      if (d % 3 === 0) l.failed(c.host, c.port); // 3, 6, 9, ... time out
      else if (d % 4 === 0) l.answered(c.host, c.port, c.id!, []); // 4, 8, 16, ... answer without a token
      else l.answered(c.host, c.port, c.id!, [], undefined, Buffer.from(`t${d}`));
    }
    const want = [1, 2, 5, 7, 10, 11, 13, 14].map((d) => ({ ...near(d), token: Buffer.from(`t${d}`) }));
    expect(l.announceTargets()).toEqual(want.map(({ host, port, id, token }) => ({ host, port, id, token })));
    expect(want).toHaveLength(K);
  });

  it('ignore keeps addresses out, whether seeds or named in answers', () => {
    const me = near(1);
    const l = new Lookup(target, [me, near(5)], { ignore: (host, port) => host === me.host && port === me.port });
    const [c] = l.next();
    expect(keysOf([c!])).toEqual(keysOf([near(5)]));
    l.answered(c!.host, c!.port, c!.id!, [me, near(2), me], undefined, Buffer.from('t'));
    const asked = l.next();
    expect(keysOf(asked)).toEqual(keysOf([near(2)]));
    for (const a of asked) l.answered(a.host, a.port, a.id!, [me]);
    expect(l.next()).toEqual([]);
    expect(l.done).toBe(true);
    expect(keysOf(l.announceTargets())).toEqual(keysOf([near(5)]));
  });

  it('never asks a node twice, even after trimming the candidate list forgot it', () => {
    // far: still pending when the flood comes; mid: answered, then trimmed away by the flood
    const far = near(60_000, 60_000);
    const mid = near(1000, 1000);
    const l = new Lookup(target, [far, mid], { maxQueries: 1_000_000 });
    expect(keysOf(l.next())).toEqual(keysOf([mid, far]));
    l.answered(mid.host, mid.port, mid.id, Array.from({ length: 250 }, (_, i) => near(i + 1)), undefined, Buffer.from('m'));
    // the far node, answering at last, names mid again
    l.answered(far.host, far.port, far.id, [mid]);
    const asked: string[] = [];
    for (;;) {
      const b = l.next();
      if (b.length === 0) break;
      asked.push(...keysOf(b));
      for (const c of b) l.failed(c.host, c.port);
    }
    expect(asked).not.toContain(addr(mid.host, mid.port));
    expect(new Set(asked).size).toBe(asked.length);
  });

  it(`keeps at most MAX_CANDIDATES (${MAX_CANDIDATES}), the closest, when answers name thousands of nodes`, () => {
    const first = near(60_000, 60_000);
    const l = new Lookup(target, [first], { maxQueries: 1_000_000, alpha: 1_000_000 });
    expect(l.next()).toHaveLength(1);
    // 5,000 nodes, in a scrambled order, at distances 1..5000
    const order = Array.from({ length: 5000 }, (_, i) => i + 1).sort(() => rnd() - 0.5);
    l.answered(first.host, first.port, first.id, order.map((d) => near(d)));
    // everything the lookup still knows of is now handed out at once: exactly the candidate list
    const asked = l.next();
    expect(asked.length).toBeLessThanOrEqual(MAX_CANDIDATES);
    expect(asked.length).toBeGreaterThanOrEqual(MAX_CANDIDATES - 1);
    expect(keysOf(asked)).toEqual(keysOf(Array.from({ length: asked.length }, (_, i) => near(i + 1))));
    for (const c of asked) l.failed(c.host, c.port);
    expect(l.done).toBe(true);
    // a second flood while queries are in flight does not grow the list either
    const l2 = new Lookup(target, [near(70_000, 7000), near(70_001, 7001), near(70_002, 7002)], { maxQueries: 1_000_000 });
    const inFlight = l2.next();
    expect(inFlight).toHaveLength(3);
    l2.answered(inFlight[0]!.host, inFlight[0]!.port, inFlight[0]!.id!, order.map((d) => near(d)));
    l2.answered(inFlight[1]!.host, inFlight[1]!.port, inFlight[1]!.id!, order.map((d) => near(d + 5000, d + 5000)));
    l2.failed(inFlight[2]!.host, inFlight[2]!.port);
    let total = 0;
    for (;;) {
      const b = l2.next();
      if (b.length === 0) break;
      total += b.length;
      for (const c of b) l2.failed(c.host, c.port);
    }
    expect(total).toBeLessThanOrEqual(MAX_CANDIDATES);
    expect(total).toBeGreaterThan(MAX_CANDIDATES / 2);
  });
});
