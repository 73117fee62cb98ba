/**
 * DHT routing table (BEP 5): XOR distance, distance ordering and shared-prefix
 * length against hand-computed values; randomIdInBucket lands in exactly the
 * bucket asked for; buckets hold at most K and keep their good nodes (a
 * newcomer only replaces a node that stopped answering); MAX_FAILURES drops a
 * node; our own id is never stored; an id claimed from a new address is not
 * believed while the old entry is healthy; one entry per address; closest()
 * matches a brute-force sort (failing nodes last); size stays consistent
 * through random operations; staleBuckets lists the buckets to refresh.
 */
import { describe, expect, it } from 'vitest';
import {
  BUCKETS,
  K,
  MAX_FAILURES,
  QUESTIONABLE_AFTER_MS,
  RoutingTable,
  VERIFY_PING_INTERVAL_MS,
  commonPrefixBits,
  compareDistance,
  distance,
  randomIdInBucket,
  type TableEntry,
} from '../../../src/dht/routing-table.js';
import { mulberry32 } from '../../helpers/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.padEnd(40, '0'), 'hex');

function seededBytes(seed: number): (n: number) => Buffer {
  const rnd = mulberry32(seed);
  return (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
    return b;
  };
}

/** An id in bucket `bucket` of an all-zero own id: bit `bucket` set, a distinguishing last byte. */
function idInBucket(bucket: number, tag: number): Buffer {
  const id = Buffer.alloc(20);
  id[bucket >> 3] = 0x80 >> (bucket & 7);
  id[19] = id[19]! | (tag & 0xff);
  id[18] = id[18]! | (tag >> 8);
  return id;
}

const ZERO = Buffer.alloc(20);

/** Brute force: sort by XOR distance to `target` as a 160-bit number. */
function byDistance<T extends { id: Buffer }>(target: Buffer, nodes: readonly T[]): T[] {
  return [...nodes].sort((a, b) => Buffer.compare(distance(a.id, target), distance(b.id, target)));
}

function checkInvariants(table: RoutingTable): void {
  const entries = table.entries();
  expect(table.size).toBe(entries.length);
  const perBucket = new Map<number, number>();
  const ids = new Set<string>();
  let lastBucket = -1;
  for (const e of entries) {
    const b = commonPrefixBits(table.ownId, e.id);
    expect(b).toBeLessThan(BUCKETS);
    expect(b).toBeGreaterThanOrEqual(lastBucket); // entries() walks the buckets in order
    lastBucket = b;
    perBucket.set(b, (perBucket.get(b) ?? 0) + 1);
    ids.add(e.id.toString('hex'));
    expect(table.has(e.id)).toBe(true);
  }
  expect(ids.size).toBe(entries.length);
  for (const n of perBucket.values()) expect(n).toBeLessThanOrEqual(K);
}

describe('distance, compareDistance, commonPrefixBits', () => {
  it('distance is bytewise XOR', () => {
    expect(distance(hex('ff00ff00'), hex('0f0ff0f0')).toString('hex')).toBe('f00f0ff0'.padEnd(40, '0'));
    const a = Buffer.from('0123456789abcdef0123456789abcdef01234567', 'hex');
    const b = Buffer.from('fedcba9876543210fedcba9876543210fedcba98', 'hex');
    expect(distance(a, b).toString('hex')).toBe('ffffffffffffffffffffffffffffffffffffffff');
    expect(distance(a, a)).toEqual(Buffer.alloc(20));
    expect(distance(a, b)).toEqual(distance(b, a));
  });

  it('compareDistance orders by XOR distance, not by numeric value', () => {
    const target = hex('10');
    // 0x11 is 0x01 away from 0x10; 0x00 is 0x10 away: 0x11 is closer though numerically larger
    expect(compareDistance(target, hex('11'), hex('00'))).toBeLessThan(0);
    expect(compareDistance(target, hex('00'), hex('11'))).toBeGreaterThan(0);
    expect(compareDistance(target, hex('10'), hex('11'))).toBeLessThan(0);
    expect(compareDistance(target, hex('12'), hex('12'))).toBe(0);
    // decided by the last byte when the others tie
    const t2 = Buffer.alloc(20, 0xaa);
    const x = Buffer.alloc(20, 0xaa);
    const y = Buffer.alloc(20, 0xaa);
    x[19] = 0xab; // distance ...01
    y[19] = 0xa8; // distance ...02
    expect(compareDistance(t2, x, y)).toBeLessThan(0);
    expect(compareDistance(t2, y, x)).toBeGreaterThan(0);
  });

  it('commonPrefixBits counts shared leading bits', () => {
    expect(commonPrefixBits(ZERO, ZERO)).toBe(160);
    expect(commonPrefixBits(ZERO, hex('80'))).toBe(0);
    expect(commonPrefixBits(ZERO, hex('40'))).toBe(1);
    expect(commonPrefixBits(ZERO, hex('01'))).toBe(7);
    expect(commonPrefixBits(ZERO, hex('0080'))).toBe(8);
    expect(commonPrefixBits(hex('abcdef12'), hex('abcdef13'))).toBe(31);
    expect(commonPrefixBits(hex('ffffff20'), hex('ffffff00'))).toBe(26);
    const last = Buffer.alloc(20);
    last[19] = 1;
    expect(commonPrefixBits(ZERO, last)).toBe(159);
    expect(commonPrefixBits(Buffer.alloc(20, 0xff), Buffer.alloc(20, 0x7f))).toBe(0);
  });
});

describe('randomIdInBucket', () => {
  it('always shares exactly `bits` leading bits with our id, for every bucket', () => {
    const random = seededBytes(7);
    for (let trial = 0; trial < 25; trial++) {
      const own = random(20);
      for (let b = 0; b < BUCKETS; b++) {
        const id = randomIdInBucket(own, b, random);
        expect(id).toHaveLength(20);
        expect(commonPrefixBits(own, id)).toBe(b);
      }
    }
  });

  it('the bits after the prefix are random, not copied from our id', () => {
    const random = seededBytes(8);
    const own = random(20);
    for (const b of [0, 3, 8, 77, 150]) {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add(randomIdInBucket(own, b, random).toString('hex'));
      expect(seen.size).toBe(20);
    }
    // bucket 159 leaves nothing random: it is our id with the last bit flipped
    const id = randomIdInBucket(own, 159, random);
    expect(distance(own, id)).toEqual(Buffer.concat([Buffer.alloc(19), Buffer.from([1])]));
  });
});

describe('RoutingTable: admission', () => {
  it('refuses an own id that is not 20 bytes', () => {
    expect(() => new RoutingTable(Buffer.alloc(19))).toThrow(RangeError);
  });

  it('never stores our own id (or an id of the wrong length)', () => {
    const own = hex('abcd');
    const table = new RoutingTable(own);
    expect(table.seen({ id: Buffer.from(own), host: '10.0.0.1', port: 1 }, 0)).toBe(false);
    expect(table.seen({ id: Buffer.alloc(19, 1), host: '10.0.0.2', port: 1 }, 0)).toBe(false);
    expect(table.size).toBe(0);
    expect(table.entries()).toEqual([]);
  });

  it('a bucket holds at most K; a full bucket of good nodes rejects newcomers, other buckets still fill', () => {
    const table = new RoutingTable(ZERO);
    for (let i = 0; i < K; i++) expect(table.seen({ id: idInBucket(0, i), host: `10.0.0.${i}`, port: 6881 }, 0)).toBe(true);
    expect(table.size).toBe(K);
    // good nodes stay even when not heard from for a long time
    const later = 10 * QUESTIONABLE_AFTER_MS;
    expect(table.seen({ id: idInBucket(0, 100), host: '10.0.1.1', port: 6881 }, later)).toBe(false);
    expect(table.has(idInBucket(0, 100))).toBe(false);
    expect(table.size).toBe(K);
    for (let i = 0; i < K; i++) expect(table.has(idInBucket(0, i))).toBe(true);
    // bucket 1 is independent
    for (let i = 0; i < K + 3; i++) table.seen({ id: idInBucket(1, i), host: `10.0.2.${i}`, port: 6881 }, later);
    expect(table.size).toBe(2 * K);
    checkInvariants(table);
  });

  it('a node that failed once and has not been seen for QUESTIONABLE_AFTER_MS makes room', () => {
    const table = new RoutingTable(ZERO);
    for (let i = 0; i < K; i++) table.seen({ id: idInBucket(0, i), host: `10.0.0.${i}`, port: 6881 }, 1000);
    table.failed(idInBucket(0, 3));
    const newcomer = { id: idInBucket(0, 200), host: '10.9.9.9', port: 7000 };
    // failed, but seen recently: still kept
    expect(table.seen(newcomer, 1000 + QUESTIONABLE_AFTER_MS - 1)).toBe(false);
    expect(table.has(idInBucket(0, 3))).toBe(true);
    // questionable now: replaced
    expect(table.seen(newcomer, 1000 + QUESTIONABLE_AFTER_MS)).toBe(true);
    expect(table.has(idInBucket(0, 3))).toBe(false);
    expect(table.has(newcomer.id)).toBe(true);
    expect(table.size).toBe(K);
    const entry = table.entries().find((e) => e.id.equals(newcomer.id))!;
    expect(entry).toMatchObject({ host: '10.9.9.9', port: 7000, lastSeen: 1000 + QUESTIONABLE_AFTER_MS, failures: 0 });
    checkInvariants(table);
  });

  it('answering again clears the failures: the node is good again and is not replaced', () => {
    const table = new RoutingTable(ZERO);
    for (let i = 0; i < K; i++) table.seen({ id: idInBucket(0, i), host: `10.0.0.${i}`, port: 6881 }, 0);
    table.failed(idInBucket(0, 0));
    table.failed(idInBucket(0, 0));
    expect(table.entries()[0]!.failures).toBe(2);
    expect(table.seen({ id: idInBucket(0, 0), host: '10.0.0.0', port: 6881 }, 5)).toBe(true);
    expect(table.entries().find((e) => e.id.equals(idInBucket(0, 0)))).toMatchObject({ failures: 0, lastSeen: 5 });
    expect(table.seen({ id: idInBucket(0, 50), host: '10.1.1.1', port: 1 }, 5 + 2 * QUESTIONABLE_AFTER_MS)).toBe(false);
  });

  it(`MAX_FAILURES (${MAX_FAILURES}) unanswered queries in a row remove the node, making room`, () => {
    const table = new RoutingTable(ZERO);
    for (let i = 0; i < K; i++) table.seen({ id: idInBucket(0, i), host: `10.0.0.${i}`, port: 6881 }, 0);
    const victim = idInBucket(0, 5);
    for (let f = 1; f < MAX_FAILURES; f++) {
      table.failed(victim);
      expect(table.has(victim)).toBe(true);
    }
    table.failed(victim);
    expect(table.has(victim)).toBe(false);
    expect(table.size).toBe(K - 1);
    // failing an unknown id or removing it again changes nothing
    table.failed(victim);
    table.remove(victim);
    table.failed(Buffer.alloc(3));
    expect(table.size).toBe(K - 1);
    // a newcomer fits at once (no staleness needed)
    expect(table.seen({ id: idInBucket(0, 77), host: '10.7.7.7', port: 1 }, 1)).toBe(true);
    expect(table.size).toBe(K);
    // and the removed node's address is free again: it can come back under another id elsewhere
    expect(table.seen({ id: idInBucket(1, 5), host: '10.0.0.5', port: 6881 }, 2)).toBe(true);
    checkInvariants(table);
  });

  it('refreshing a known node updates lastSeen without growing the table', () => {
    const table = new RoutingTable(ZERO);
    const n = { id: idInBucket(4, 1), host: '10.0.0.1', port: 1 };
    expect(table.seen(n, 10)).toBe(true);
    expect(table.seen(n, 20)).toBe(true);
    expect(table.size).toBe(1);
    expect(table.entries()[0]).toMatchObject({ lastSeen: 20, failures: 0 });
  });
});

describe('RoutingTable: ids and addresses', () => {
  it('the same id from a new address is not believed while the old entry is healthy', () => {
    const table = new RoutingTable(ZERO);
    const id = idInBucket(2, 1);
    table.seen({ id, host: '10.0.0.1', port: 6881 }, 0);
    expect(table.seen({ id, host: '10.6.6.6', port: 6881 }, 1)).toBe(false);
    expect(table.seen({ id, host: '10.0.0.1', port: 6882 }, 1)).toBe(false);
    expect(table.entries()).toHaveLength(1);
    expect(table.entries()[0]).toMatchObject({ host: '10.0.0.1', port: 6881, lastSeen: 0 });
  });

  it('... but once the old entry has failed, the id may move to the new address', () => {
    const table = new RoutingTable(ZERO);
    const id = idInBucket(2, 1);
    table.seen({ id, host: '10.0.0.1', port: 6881 }, 0);
    table.failed(id);
    expect(table.seen({ id, host: '10.0.0.2', port: 6881 }, 1)).toBe(true);
    expect(table.entries()).toHaveLength(1);
    expect(table.entries()[0]).toMatchObject({ host: '10.0.0.2', port: 6881, lastSeen: 1, failures: 0 });
    // the old address is free: another node may use it
    expect(table.seen({ id: idInBucket(3, 1), host: '10.0.0.1', port: 6881 }, 2)).toBe(true);
    expect(table.size).toBe(2);
    checkInvariants(table);
  });

  it('one entry per address: a node that changes its id replaces its old entry', () => {
    const table = new RoutingTable(ZERO);
    table.seen({ id: idInBucket(0, 1), host: '10.0.0.1', port: 6881 }, 0);
    table.seen({ id: idInBucket(0, 2), host: '10.0.0.2', port: 6881 }, 0);
    // same address, new id, even in another bucket
    expect(table.seen({ id: idInBucket(9, 1), host: '10.0.0.1', port: 6881 }, 1)).toBe(true);
    expect(table.has(idInBucket(0, 1))).toBe(false);
    expect(table.has(idInBucket(9, 1))).toBe(true);
    expect(table.size).toBe(2);
    // same host, another port: a different address, both kept
    expect(table.seen({ id: idInBucket(0, 3), host: '10.0.0.2', port: 6882 }, 1)).toBe(true);
    expect(table.size).toBe(3);
    checkInvariants(table);
  });

  it('one entry per address also when a failing id moves onto an address another entry holds', () => {
    const table = new RoutingTable(ZERO);
    const a = idInBucket(0, 1);
    const b = idInBucket(0, 2);
    table.seen({ id: a, host: '10.0.0.1', port: 6881 }, 0);
    table.seen({ id: b, host: '10.0.0.2', port: 6881 }, 0);
    table.failed(a);
    // a (failing) now answers from b's address
    table.seen({ id: a, host: '10.0.0.2', port: 6881 }, 1);
    const atAddress = (host: string): TableEntry[] => table.entries().filter((e) => e.host === host && e.port === 6881);
    expect(atAddress('10.0.0.2').length).toBeLessThanOrEqual(1);
    // and the address index stays right: after the survivor leaves, a newcomer there is the only entry
    for (const e of atAddress('10.0.0.2')) table.remove(e.id);
    table.seen({ id: idInBucket(0, 3), host: '10.0.0.2', port: 6881 }, 2);
    expect(atAddress('10.0.0.2')).toHaveLength(1);
    checkInvariants(table);
  });
});

describe('RoutingTable: verified and unverified nodes', () => {
  const node = (tag: number, host = `10.0.3.${tag}`) => ({ id: idInBucket(5, tag), host, port: 6881 });

  it('a querier joins unverified: kept, but not handed to others until it answers', () => {
    const table = new RoutingTable(ZERO);
    expect(table.seen(node(1), 0, false)).toBe(true);
    expect(table.isVerified(node(1).id)).toBe(false);
    expect(table.closest(node(1).id, K, true)).toEqual([]);
    expect(table.closest(node(1).id, K).map((e) => e.host)).toEqual(['10.0.3.1']);
    // another query does not verify it; an answer does
    table.seen(node(1), 1, false);
    expect(table.isVerified(node(1).id)).toBe(false);
    table.seen(node(1), 2, true);
    expect(table.closest(node(1).id, K, true).map((e) => e.host)).toEqual(['10.0.3.1']);
  });

  it('an unverified claim neither replaces a stale node, nor moves an id, nor changes the id at an address', () => {
    const table = new RoutingTable(ZERO);
    for (let i = 0; i < K; i++) table.seen(node(i), 0, true);
    for (let i = 0; i < MAX_FAILURES - 1; i++) table.failed(node(0).id);
    const late = 2 * QUESTIONABLE_AFTER_MS;
    // the stale slot goes to a verified newcomer only
    expect(table.seen(node(50), late, false)).toBe(false);
    // a failing id is not moved by a query from elsewhere
    expect(table.seen({ ...node(0), host: '10.0.9.9' }, late, false)).toBe(false);
    expect(table.entries().find((e) => e.id.equals(node(0).id))?.host).toBe('10.0.3.0');
    // an address's entry keeps its id against a query claiming another
    expect(table.seen({ ...node(60), host: '10.0.3.1' }, late, false)).toBe(false);
    expect(table.has(node(1).id)).toBe(true);
    expect(table.seen(node(50), late, true)).toBe(true);
    expect(table.has(node(0).id)).toBe(false);
    checkInvariants(table);
  });

  it('a query (source possibly forged) does not keep a failing node looking alive: it still goes stale', () => {
    const table = new RoutingTable(ZERO);
    for (let i = 0; i < K; i++) table.seen(node(i), 0, true);
    table.failed(node(0).id);
    // "queries" from its address all along
    for (let t = 1; t <= 4; t++) table.seen(node(0), (t * QUESTIONABLE_AFTER_MS) / 2, false);
    expect(table.entries().find((e) => e.id.equals(node(0).id))?.lastSeen).toBe(0);
    expect(table.seen(node(70), 2 * QUESTIONABLE_AFTER_MS, true)).toBe(true);
    expect(table.has(node(0).id)).toBe(false);
  });

  it('shouldVerify: once per VERIFY_PING_INTERVAL_MS for an unverified node, never for a verified one', () => {
    const table = new RoutingTable(ZERO);
    table.seen(node(1), 0, false);
    table.seen(node(2), 0, true);
    expect(table.shouldVerify(node(1).id, 1)).toBe(true);
    expect(table.shouldVerify(node(1).id, 2)).toBe(false);
    expect(table.shouldVerify(node(1).id, 1 + VERIFY_PING_INTERVAL_MS)).toBe(true);
    expect(table.shouldVerify(node(2).id, 1)).toBe(false);
    expect(table.shouldVerify(node(3).id, 1)).toBe(false);
  });
});

describe('RoutingTable: closest, size, staleBuckets', () => {
  function populated(seed: number, count: number): { table: RoutingTable; random: (n: number) => Buffer } {
    const random = seededBytes(seed);
    const table = new RoutingTable(random(20));
    const rnd = mulberry32(seed + 1);
    for (let i = 0; i < count; i++) {
      // spread over the first ~40 buckets so the table holds a few hundred nodes
      const id = randomIdInBucket(table.ownId, Math.floor(rnd() * 40), random);
      table.seen({ id, host: `10.${(i >> 8) & 255}.${i & 255}.1`, port: 1000 + i }, i);
    }
    return { table, random };
  }

  it('closest() matches a brute-force sort over a few hundred nodes', () => {
    const { table, random } = populated(11, 600);
    expect(table.size).toBeGreaterThan(200);
    checkInvariants(table);
    const all = table.entries();
    for (let trial = 0; trial < 30; trial++) {
      // targets both far from and near our id
      const target = trial % 2 === 0 ? random(20) : randomIdInBucket(table.ownId, trial * 3, random);
      const want = byDistance(target, all).map((e) => e.id.toString('hex'));
      expect(table.closest(target).map((e) => e.id.toString('hex'))).toEqual(want.slice(0, K));
      expect(table.closest(target, 50).map((e) => e.id.toString('hex'))).toEqual(want.slice(0, 50));
      expect(table.closest(target, 100_000)).toHaveLength(all.length);
    }
    // a target that is a known node: it comes first
    const known = all[17]!;
    expect(table.closest(known.id, 1)[0]!.id).toEqual(known.id);
  });

  it('closest() puts failing nodes last, each group in distance order', () => {
    const { table, random } = populated(12, 400);
    const rnd = mulberry32(99);
    const failing = new Set<string>();
    for (const e of table.entries()) {
      if (rnd() < 0.3) {
        table.failed(e.id);
        failing.add(e.id.toString('hex'));
      }
    }
    expect(failing.size).toBeGreaterThan(20);
    const target = random(20);
    const all = table.entries();
    const good = byDistance(
      target,
      all.filter((e) => !failing.has(e.id.toString('hex'))),
    );
    const bad = byDistance(
      target,
      all.filter((e) => failing.has(e.id.toString('hex'))),
    );
    expect(table.closest(target, all.length).map((e) => e.id.toString('hex'))).toEqual(
      [...good, ...bad].map((e) => e.id.toString('hex')),
    );
    // the closest node overall, if failing, is not among the K returned while K good ones exist
    expect(table.closest(target).every((e) => e.failures === 0)).toBe(true);
  });

  it('size stays consistent through thousands of random seen / failed / remove calls', () => {
    const random = seededBytes(21);
    const rnd = mulberry32(22);
    const table = new RoutingTable(random(20));
    // a small pool of ids and addresses so that collisions (same id, same address) are frequent
    const ids = Array.from({ length: 120 }, () => randomIdInBucket(table.ownId, Math.floor(rnd() * 6), random));
    ids.push(Buffer.from(table.ownId));
    const hosts = Array.from({ length: 60 }, (_, i) => `10.0.${i >> 4}.${i & 15}`);
    let now = 0;
    for (let step = 0; step < 5000; step++) {
      now += Math.floor(rnd() * 120_000);
      const id = ids[Math.floor(rnd() * ids.length)]!;
      const r = rnd();
      if (r < 0.6) {
        const host = hosts[Math.floor(rnd() * hosts.length)]!;
        const ok = table.seen({ id, host, port: 6881 }, now);
        if (ok) expect(table.has(id)).toBe(true);
        if (id.equals(table.ownId)) expect(ok).toBe(false);
      } else if (r < 0.9) {
        table.failed(id);
      } else {
        table.remove(id);
        expect(table.has(id)).toBe(false);
      }
      expect(table.size).toBe(table.entries().length);
      if (step % 50 === 0) checkInvariants(table);
    }
    checkInvariants(table);
    expect(table.size).toBeGreaterThan(10);
  });

  it('staleBuckets lists the non-empty buckets whose nodes were all last seen before the cutoff', () => {
    const table = new RoutingTable(ZERO);
    expect(table.staleBuckets(1_000_000)).toEqual([]);
    table.seen({ id: idInBucket(0, 1), host: '10.0.0.1', port: 1 }, 100);
    table.seen({ id: idInBucket(0, 2), host: '10.0.0.2', port: 1 }, 200);
    table.seen({ id: idInBucket(5, 1), host: '10.0.0.3', port: 1 }, 100);
    table.seen({ id: idInBucket(5, 2), host: '10.0.0.4', port: 1 }, 900);
    table.seen({ id: idInBucket(159, 0), host: '10.0.0.5', port: 1 }, 50);
    expect(table.staleBuckets(100)).toEqual([159]);
    expect(table.staleBuckets(201)).toEqual([0, 159]);
    expect(table.staleBuckets(901)).toEqual([0, 5, 159]);
    // a node answering refreshes its bucket
    table.seen({ id: idInBucket(0, 1), host: '10.0.0.1', port: 1 }, 1000);
    expect(table.staleBuckets(901)).toEqual([5, 159]);
  });
});
