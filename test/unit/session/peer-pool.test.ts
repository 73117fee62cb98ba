import { describe, expect, it } from 'vitest';
import {
  IP_BAN_MEMORY_MS,
  KNOWN_FORGET_AFTER_MS,
  KNOWN_MAX_RETRY_MS,
  MAX_BAN_RECORDS,
  MAX_KNOWN_PEERS,
  MAX_KNOWN_PER_IP,
  MAX_QUEUED_PER_IP,
  MAX_SUSPECT_WINDOW_MS,
  PeerPool,
  SUSPECT_WINDOW_MS,
} from '../../../src/session/peer-pool.js';

function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const BASE_RETRY_MS = 5_000; // the pool's first backoff step

describe('PeerPool.add', () => {
  it('dedupes by host:port; another port on the same host is another peer', () => {
    const pool = new PeerPool(() => 0);
    expect(pool.add([{ host: '127.0.0.1', port: 6881 }, { host: '127.0.0.1', port: 6881 }])).toBe(1);
    expect(pool.add([{ host: '127.0.0.1', port: 6881 }])).toBe(0);
    expect(pool.add([{ host: '127.0.0.1', port: 6882 }, { host: '::1', port: 6881 }])).toBe(2);
    expect(pool.size).toBe(3);
    expect(pool.get('[::1]:6881')).toMatchObject({ host: '::1', port: 6881, failures: 0 });
  });

  it('drops bad ports', () => {
    const pool = new PeerPool(() => 0);
    const bad = [0, -1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY];
    expect(pool.add(bad.map((port) => ({ host: '10.0.0.1', port })))).toBe(0);
    expect(pool.size).toBe(0);
    expect(pool.add([{ host: '10.0.0.1', port: 1 }, { host: '10.0.0.1', port: 65535 }])).toBe(2);
  });

  it('never holds more than MAX_KNOWN_PEERS: new peers replace idle ones', () => {
    const pool = new PeerPool(() => 0);
    const many = Array.from({ length: MAX_KNOWN_PEERS + 500 }, (_, i) => ({ host: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, port: 6881 }));
    pool.add(many);
    expect(pool.size).toBe(MAX_KNOWN_PEERS);
    const last = many[many.length - 1]!;
    expect(pool.get(`${last.host}:6881`)).toBeDefined();
  });

  it('never evicts connected or connecting peers to make room', () => {
    const pool = new PeerPool(() => 0);
    const full = Array.from({ length: MAX_KNOWN_PEERS }, (_, i) => ({ host: `10.1.${i >> 8}.${i & 255}`, port: 7000 }));
    pool.add(full);
    full.forEach((a, i) => (i % 2 ? pool.markConnected(`${a.host}:7000`) : pool.markConnecting(`${a.host}:7000`)));
    expect(pool.add([{ host: '192.168.0.1', port: 1 }])).toBe(0);
    expect(pool.size).toBe(MAX_KNOWN_PEERS);
    expect(pool.get('192.168.0.1:1')).toBeUndefined();
  });

  it("never evicts the user's peers; PEX peers go first, and PEX only ever replaces PEX", () => {
    const pool = new PeerPool(() => 0);
    const addr = (n: number, a: number): { host: string; port: number } => ({ host: `10.${a}.${n >> 8}.${n & 255}`, port: 1 });
    pool.add([addr(0, 0)], true); // the user's --peer
    pool.add(Array.from({ length: 1000 }, (_, i) => addr(i, 1))); // a tracker's
    pool.add(Array.from({ length: MAX_KNOWN_PEERS - 1001 }, (_, i) => addr(i, 2)), false, true); // PEX
    expect(pool.size).toBe(MAX_KNOWN_PEERS);
    // a PEX flood replaces PEX entries only: the tracker's and the user's stay
    expect(pool.add(Array.from({ length: 5000 }, (_, i) => addr(i, 3)), false, true)).toBe(5000);
    expect(pool.size).toBe(MAX_KNOWN_PEERS);
    expect(pool.get('10.0.0.0:1')).toBeDefined();
    for (let i = 0; i < 1000; i++) expect(pool.get(`10.1.${i >> 8}.${i & 255}:1`)).toBeDefined();
    // with no PEX entry left idle, PEX adds nothing
    const onlyOthers = new PeerPool(() => 0);
    onlyOthers.add([addr(0, 0)], true);
    onlyOthers.add(Array.from({ length: MAX_KNOWN_PEERS - 1 }, (_, i) => addr(i, 1)));
    expect(onlyOthers.add([addr(1, 9)], false, true)).toBe(0);
    // a tracker's new peer takes a PEX entry's place first, then another tracker peer's, never the user's
    const mixed = new PeerPool(() => 0);
    mixed.add([addr(0, 0)], true);
    mixed.add([addr(0, 2)], false, true);
    mixed.add(Array.from({ length: MAX_KNOWN_PEERS - 2 }, (_, i) => addr(i, 1)));
    mixed.add([addr(5, 9)]);
    expect(mixed.get('10.2.0.0:1')).toBeUndefined();
    mixed.add([addr(6, 9)]);
    expect(mixed.get('10.1.0.0:1')).toBeUndefined();
    expect(mixed.get('10.0.0.0:1')).toBeDefined();
  });
});

describe('PeerPool.fromPex', () => {
  it('lists the peers heard of through PEX that are still known: not the banned, not the forgotten, not the others', () => {
    const pool = new PeerPool(() => 0);
    pool.add([{ host: '10.0.0.1', port: 1 }], true);
    pool.add([{ host: '10.0.0.2', port: 1 }]);
    pool.add([1, 2, 3, 4].map((n) => ({ host: '10.0.1.1', port: n })), false, true);
    pool.add([{ host: '10.0.0.2', port: 1 }], false, true); // already known from a tracker: stays the tracker's
    pool.ban('10.0.1.1:2', 'bad data');
    pool.markFailed('10.0.1.1:3', false);
    expect(pool.fromPex()).toEqual([{ host: '10.0.1.1', port: 1 }, { host: '10.0.1.1', port: 4 }]);
  });
});

describe('PeerPool.candidates and backoff', () => {
  it('offers idle peers only, up to the limit', () => {
    const pool = new PeerPool(() => 0);
    pool.add([1, 2, 3, 4, 5].map((port) => ({ host: '127.0.0.1', port })));
    pool.markConnecting('127.0.0.1:1');
    pool.markConnected('127.0.0.1:2');
    expect(pool.candidates(10).map((p) => p.port)).toEqual([3, 4, 5]);
    expect(pool.candidates(2)).toHaveLength(2);
    expect(pool.candidates(0)).toHaveLength(0);
  });

  it('holds a failed peer back until its backoff expires', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add([{ host: '127.0.0.1', port: 9 }]);
    pool.markConnecting('127.0.0.1:9');
    pool.markFailed('127.0.0.1:9');
    expect(pool.candidates(10)).toHaveLength(0);
    expect(pool.hasWaiting()).toBe(true);
    clock.advance(BASE_RETRY_MS - 1);
    expect(pool.candidates(10)).toHaveLength(0);
    clock.advance(1);
    expect(pool.candidates(10).map((p) => p.key)).toEqual(['127.0.0.1:9']);
  });

  it('doubles the backoff on each failure, then forgets the peer', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const key = '127.0.0.1:9';
    pool.add([{ host: '127.0.0.1', port: 9 }]);
    const delays: number[] = [];
    for (let i = 0; i < 20 && pool.get(key); i++) {
      pool.markFailed(key);
      const p = pool.get(key);
      if (!p) break;
      delays.push(p.nextAttemptAt - clock.now());
      clock.advance(p.nextAttemptAt - clock.now());
    }
    expect(delays.length).toBeGreaterThanOrEqual(3);
    expect(delays.length).toBeLessThan(20);
    expect(delays[0]).toBe(BASE_RETRY_MS);
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBe(2 * delays[i - 1]!);
    expect(pool.get(key)).toBeUndefined();
    expect(pool.size).toBe(0);
  });

  it('a successful connection resets the failure count', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const key = '127.0.0.1:9';
    pool.add([{ host: '127.0.0.1', port: 9 }]);
    pool.markFailed(key);
    pool.markFailed(key);
    pool.markConnected(key);
    expect(pool.get(key)!.failures).toBe(0);
    pool.markFailed(key);
    expect(pool.get(key)!.nextAttemptAt - clock.now()).toBe(BASE_RETRY_MS);
  });

  it('an unhelpful peer waits the given step, doubling per visit, which its next handshake does not undo; naming it again changes nothing', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const key = '127.0.0.1:9';
    const step = 60_000;
    pool.add([{ host: '127.0.0.1', port: 9 }]);
    const delays: number[] = [];
    for (let visit = 0; visit < 8; visit++) {
      expect(pool.candidates(10).map((p) => p.key)).toEqual([key]);
      pool.markConnecting(key);
      pool.markConnected(key);
      pool.markUnhelpful(key, step);
      expect(pool.add([{ host: '127.0.0.1', port: 9 }])).toBe(0); // a tracker or PEX naming it again
      const wait = pool.get(key)!.nextAttemptAt - clock.now();
      delays.push(wait);
      clock.advance(wait - 1);
      expect(pool.candidates(10)).toEqual([]);
      clock.advance(1);
    }
    expect(delays).toEqual([step, 2 * step, 4 * step, 8 * step, 10 * step, 10 * step, 10 * step, 10 * step]); // capped at 10 min
    expect(pool.get(key)).toMatchObject({ failures: 0, connected: false, connecting: false });
    // a failure after that is an ordinary one: the usual first step
    pool.markConnecting(key);
    pool.markFailed(key);
    expect(pool.get(key)!.nextAttemptAt - clock.now()).toBe(BASE_RETRY_MS);
  });

  it('wakeUnhelpful: the peers that had nothing for us (two seeds) are dialed again at once, their count kept; others keep their wait', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add([1, 2, 3].map((port) => ({ host: '127.0.0.1', port })));
    for (const key of ['127.0.0.1:1', '127.0.0.1:2']) {
      pool.markConnecting(key);
      pool.markConnected(key);
    }
    pool.markUnhelpful('127.0.0.1:1', 60_000);
    pool.markFailed('127.0.0.1:2');
    pool.markConnecting('127.0.0.1:3');
    expect(pool.candidates(10)).toEqual([]);
    pool.wakeUnhelpful(); // we lost a piece: the seed we parted from has it
    expect(pool.candidates(10).map((p) => p.key)).toEqual(['127.0.0.1:1']);
    pool.markConnecting('127.0.0.1:1');
    pool.markConnected('127.0.0.1:1');
    pool.markUnhelpful('127.0.0.1:1', 60_000);
    expect(pool.get('127.0.0.1:1')!.nextAttemptAt - clock.now()).toBe(120_000); // the second visit: doubled
  });

  it('retry=false forgets the peer at once; it can be learnt again later', () => {
    const pool = new PeerPool(() => 0);
    pool.add([{ host: '127.0.0.1', port: 9 }]);
    pool.markFailed('127.0.0.1:9', false);
    expect(pool.get('127.0.0.1:9')).toBeUndefined();
    expect(pool.isBanned('127.0.0.1:9')).toBe(false);
    expect(pool.add([{ host: '127.0.0.1', port: 9 }])).toBe(1);
  });

  it('ignores unknown keys', () => {
    const pool = new PeerPool(() => 0);
    expect(() => {
      pool.markFailed('nobody:1');
      pool.markConnected('nobody:1');
      pool.markConnecting('nobody:1');
    }).not.toThrow();
    expect(pool.size).toBe(0);
  });
});

describe('PeerPool.ban', () => {
  it('is permanent: the peer is dropped and cannot be re-added', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add([{ host: '127.0.0.1', port: 9 }, { host: '127.0.0.1', port: 10 }]);
    pool.ban('127.0.0.1:9', 'sent bad data');
    expect(pool.isBanned('127.0.0.1:9')).toBe(true);
    expect(pool.get('127.0.0.1:9')).toBeUndefined();
    clock.advance(24 * 3600_000);
    expect(pool.add([{ host: '127.0.0.1', port: 9 }])).toBe(0);
    expect(pool.candidates(10).map((p) => p.key)).toEqual(['127.0.0.1:10']);
    expect(pool.isBanned('127.0.0.1:10')).toBe(false);
  });

  it('can ban a peer the pool never knew (an incoming connection)', () => {
    const pool = new PeerPool(() => 0);
    pool.ban('[::1]:5000', 'hash fail');
    expect(pool.add([{ host: '::1', port: 5000 }])).toBe(0);
  });
});

describe('per-IP limits', () => {
  const ports = (host: string, n: number, from = 1000): { host: string; port: number }[] =>
    Array.from({ length: n }, (_, i) => ({ host, port: from + i }));

  /** The ports of `ip` that candidates would dial now. */
  const dialable = (pool: PeerPool, ip: string): number[] =>
    pool
      .candidates(100_000)
      .filter((p) => p.host === ip)
      .map((p) => p.port);

  it(`dials at most ${MAX_KNOWN_PER_IP} addresses of one IP at a time (one host naming many ports); ${MAX_QUEUED_PER_IP} more queue, the rest are dropped; other IPs unaffected`, () => {
    const pool = new PeerPool(() => 0);
    expect(pool.add(ports('10.0.0.1', 500))).toBe(MAX_KNOWN_PER_IP + MAX_QUEUED_PER_IP);
    expect(pool.add(ports('10.0.0.1', 5, 5000), false, true)).toBe(0);
    expect(dialable(pool, '10.0.0.1')).toEqual(ports('10.0.0.1', MAX_KNOWN_PER_IP).map((a) => a.port));
    expect(pool.add(ports('10.0.0.2', 3))).toBe(3);
    expect(pool.size).toBe(MAX_KNOWN_PER_IP + MAX_QUEUED_PER_IP + 3);
  });

  it('counts an IPv4-mapped IPv6 address and IPv6 letter case as the same IP', () => {
    const pool = new PeerPool(() => 0);
    pool.add(ports('10.0.0.1', MAX_KNOWN_PER_IP - 1));
    pool.add([{ host: '::ffff:10.0.0.1', port: 1 }, { host: '::ffff:10.0.0.1', port: 2 }]);
    expect(pool.candidates(1000).map((p) => p.key)).toContain('[::ffff:10.0.0.1]:1');
    expect(pool.candidates(1000).map((p) => p.key)).not.toContain('[::ffff:10.0.0.1]:2');
    pool.add(ports('fe80::a', MAX_KNOWN_PER_IP - 1));
    pool.add([{ host: 'FE80::A', port: 1 }, { host: 'fe80::A', port: 2 }]);
    expect(pool.candidates(1000)).toHaveLength(2 * MAX_KNOWN_PER_IP);
  });

  it("the user's own peers are always taken, and a forgotten or banned address gives its place to the first that queued", () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add(ports('10.0.0.1', MAX_KNOWN_PER_IP));
    expect(pool.add(ports('10.0.0.1', 2, 9000), true)).toBe(2); // --peer
    expect(dialable(pool, '10.0.0.1')).toHaveLength(MAX_KNOWN_PER_IP + 2);
    expect(pool.add(ports('10.0.0.1', 3, 9100))).toBe(3); // queued
    expect(dialable(pool, '10.0.0.1')).not.toContain(9100);
    pool.ban('10.0.0.1:1000', 'bad data');
    pool.markFailed('10.0.0.1:1001', false);
    pool.markSelf('10.0.0.1:9000'); // the user's peers are only ever forgotten when they are us
    // 34 were dialable (the user's two count as the IP's too), 3 are gone: one place is free
    expect(dialable(pool, '10.0.0.1').filter((p) => p >= 9100)).toEqual([9100]);
    pool.markSelf('10.0.0.1:9001');
    expect(dialable(pool, '10.0.0.1').filter((p) => p >= 9100)).toEqual([9100, 9101]);
  });

  /**
   * Dial what the pool offers (at most `perIp` at once per IP, as the
   * session does), every address but `live` refusing at once; returns how
   * often each port was dialed before `live` was, or undefined if it never was.
   */
  function dialUntil(pool: PeerPool, clock: ReturnType<typeof fakeClock>, live: string, perIp = 8): Map<number, number> | undefined {
    const dials = new Map<number, number>();
    for (let round = 0; round < 2_000; round++) {
      const picked = pool.candidates(50, 0, { limit: perIp, busy: pool.busyByIp() });
      for (const p of picked) pool.markConnecting(p.key);
      for (const p of picked) {
        dials.set(p.port, (dials.get(p.port) ?? 0) + 1);
        if (p.key === live) return dials;
        pool.markFailed(p.key);
      }
      clock.advance(1_000);
    }
    return undefined;
  }

  it('one reply naming 100 dead ports of an IP, then the live peer there: the live one is dialed, after each dead one once', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const reply = [...ports('127.0.0.1', 100, 33500), { host: '127.0.0.1', port: 33140 }];
    expect(pool.add(reply)).toBe(101);
    const dials = dialUntil(pool, clock, '127.0.0.1:33140');
    expect(dials).toBeDefined();
    expect(dials!.get(33140)).toBe(1);
    expect([...dials!.values()].every((n) => n === 1)).toBe(true);
    expect(dials!.size).toBe(101);
  });

  it('through PEX too: a message naming 40 dead ports at the IP of the peer that sent it, then the live one', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add([{ host: '127.0.0.1', port: 33211 }], true); // --peer: the one sending the list
    pool.markConnected('127.0.0.1:33211');
    expect(pool.add([...ports('127.0.0.1', 40, 33500), { host: '127.0.0.1', port: 33190 }], false, true)).toBe(41);
    expect(dialUntil(pool, clock, '127.0.0.1:33190')).toBeDefined();
  });

  it('addresses named after the dead ones failed (a later reply) take the place of the one that failed most, at once, and are dialed before retries', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add(ports('10.0.0.1', MAX_KNOWN_PER_IP));
    for (const p of pool.candidates(100)) {
      pool.markConnecting(p.key);
      pool.markFailed(p.key);
    }
    clock.advance(BASE_RETRY_MS);
    pool.markFailed('10.0.0.1:1005'); // failed twice: the first to go
    clock.advance(4 * BASE_RETRY_MS);
    expect(pool.add([{ host: '10.0.0.1', port: 7000 }])).toBe(1);
    expect(pool.get('10.0.0.1:1005')).toBeUndefined();
    const next = pool.candidates(100);
    expect(next[0]!.key).toBe('10.0.0.1:7000'); // untried first, then the retries
    expect(next).toHaveLength(MAX_KNOWN_PER_IP);
  });

  it("never makes room by forgetting the user's peers, a peer we had a connection with, or a connected one", () => {
    const pool = new PeerPool(fakeClock().now);
    pool.add(ports('10.0.0.1', 2, 9000), true);
    pool.add(ports('10.0.0.1', MAX_KNOWN_PER_IP - 2));
    pool.markConnected('10.0.0.1:1000');
    pool.markFailed('10.0.0.1:1000'); // once connected: kept for its forget horizon
    pool.markConnected('10.0.0.1:1001');
    pool.markFailed('10.0.0.1:9000');
    pool.add([{ host: '10.0.0.1', port: 7000 }]);
    for (const key of ['10.0.0.1:9000', '10.0.0.1:1000', '10.0.0.1:1001']) expect(pool.get(key)?.queued).toBe(false);
    expect(pool.get('10.0.0.1:7000')?.queued).toBe(true);
  });

  it('a queued address that connects to us takes a place at once', () => {
    const pool = new PeerPool(() => 0);
    pool.add(ports('10.0.0.1', MAX_KNOWN_PER_IP + 1));
    const last = `10.0.0.1:${1000 + MAX_KNOWN_PER_IP}`;
    expect(pool.get(last)?.queued).toBe(true);
    pool.markConnected(last);
    expect(pool.get(last)?.queued).toBe(false);
    pool.markFailed(last);
    expect(pool.get(last)).toBeDefined();
  });

  it('candidates hands out no more dials to an IP than its limit, counting connections already open', () => {
    const pool = new PeerPool(() => 0);
    pool.add([...ports('10.0.0.1', 10), ...ports('10.0.0.2', 10), { host: '10.0.0.3', port: 1 }]);
    const busy = new Map([['10.0.0.1', 2]]);
    const picked = pool.candidates(100, 0, { limit: 3, busy });
    const per = (ip: string): number => picked.filter((p) => p.host === ip).length;
    expect([per('10.0.0.1'), per('10.0.0.2'), per('10.0.0.3')]).toEqual([1, 3, 1]);
    expect(busy).toEqual(new Map([['10.0.0.1', 3], ['10.0.0.2', 3], ['10.0.0.3', 1]]));
    // an IP at its limit does not use up `limit`: the one behind it is still reached
    const again = new PeerPool(() => 0);
    again.add([...ports('10.0.0.1', 10), { host: '10.0.0.9', port: 1 }]);
    expect(again.candidates(2, 0, { limit: 1, busy: new Map() }).map((p) => p.key)).toEqual(['10.0.0.1:1000', '10.0.0.9:1']);
  });

  it('busyByIp counts the peers connected or being dialed, per IP', () => {
    const pool = new PeerPool(() => 0);
    pool.add([...ports('10.0.0.1', 4), { host: '::ffff:10.0.0.2', port: 1 }]);
    pool.markConnected('10.0.0.1:1000');
    pool.markConnecting('10.0.0.1:1001');
    pool.markConnecting('[::ffff:10.0.0.2]:1');
    expect(pool.busyByIp()).toEqual(new Map([['10.0.0.1', 2], ['10.0.0.2', 1]]));
    pool.markFailed('10.0.0.1:1001');
    expect(pool.busyByIp().get('10.0.0.1')).toBe(1);
  });
});

describe("the user's peers and peers we once had a connection with", () => {
  /** Fail `key` at each of its dial times until `until` (a dead peer refusing at once); the delays seen. */
  function failUntil(pool: PeerPool, clock: ReturnType<typeof fakeClock>, key: string, until: number): number[] {
    const delays: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const p = pool.get(key);
      if (!p || p.nextAttemptAt >= until) break;
      clock.advance(Math.max(0, p.nextAttemptAt - clock.now()));
      pool.markConnecting(key);
      pool.markFailed(key);
      const next = pool.get(key);
      if (next) delays.push(next.nextAttemptAt - clock.now());
    }
    return delays;
  }

  it(`a --peer is never forgotten, whatever happens but being ourselves; its wait grows to ${KNOWN_MAX_RETRY_MS / 1000} s and stays there`, () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const key = '127.0.0.1:9';
    pool.add([{ host: '127.0.0.1', port: 9 }], true);
    const delays = failUntil(pool, clock, key, clock.now() + 3_600_000);
    expect(delays.length).toBeGreaterThan(100);
    expect(delays.slice(0, 5)).toEqual([5_000, 10_000, 20_000, KNOWN_MAX_RETRY_MS, KNOWN_MAX_RETRY_MS]);
    expect(Math.max(...delays)).toBe(KNOWN_MAX_RETRY_MS);
    expect(pool.get(key)).toBeDefined();
    // a protocol error does not make us forget it either (the user asked for it): it waits like any failure
    pool.markFailed(key, false);
    expect(pool.get(key)!.nextAttemptAt - clock.now()).toBe(KNOWN_MAX_RETRY_MS);
    // it comes back: found within KNOWN_MAX_RETRY_MS
    clock.advance(KNOWN_MAX_RETRY_MS);
    expect(pool.candidates(10).map((p) => p.key)).toEqual([key]);
    pool.markSelf(key);
    expect(pool.get(key)).toBeUndefined();
  });

  it(`a seed we were connected to that goes away for D s is dialed again within ${KNOWN_MAX_RETRY_MS / 1000} s of coming back (D up to the forget horizon)`, () => {
    /** How long after it is back a peer that was down `downS` seconds waits for our next dial. */
    const waitAfterReturn = (downS: number): number => {
      const clock = fakeClock();
      const pool = new PeerPool(clock.now);
      const key = '10.0.0.7:6881';
      pool.add([{ host: '10.0.0.7', port: 6881 }]); // from a tracker
      pool.markConnecting(key);
      pool.markConnected(key);
      const back = clock.now() + downS * 1000;
      pool.markFailed(key); // the connection is lost
      failUntil(pool, clock, key, back); // every dial while it is down is refused
      const p = pool.get(key);
      expect(p, `down ${downS} s`).toBeDefined();
      return p!.nextAttemptAt - back;
    };
    // the common case: down 45 s, dialed 20 s after it is back (waits of 5, 10, 20 s, then 30); the doubling alone waited 30 s
    expect(waitAfterReturn(45)).toBe(20_000);
    // down 80 s: the doubling alone waited 75 s (dials at 75 s, then 155 s)
    expect(waitAfterReturn(80)).toBe(15_000);
    for (let downS = 1; downS * 1000 < KNOWN_FORGET_AFTER_MS - KNOWN_MAX_RETRY_MS; downS += 7) {
      expect(waitAfterReturn(downS), `down ${downS} s`).toBeLessThanOrEqual(KNOWN_MAX_RETRY_MS);
    }
  });

  it(`a peer we once had a connection with is forgotten after failing for ${KNOWN_FORGET_AFTER_MS / 60_000} min; one we never reached keeps the doubling`, () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    pool.add([{ host: '10.0.0.7', port: 1 }, { host: '10.0.0.7', port: 2 }]);
    pool.markConnected('10.0.0.7:1');
    const start = clock.now();
    pool.markFailed('10.0.0.7:1');
    failUntil(pool, clock, '10.0.0.7:1', Number.MAX_SAFE_INTEGER);
    expect(pool.get('10.0.0.7:1')).toBeUndefined();
    expect(clock.now() - start).toBeGreaterThanOrEqual(KNOWN_FORGET_AFTER_MS);
    expect(clock.now() - start).toBeLessThan(KNOWN_FORGET_AFTER_MS + KNOWN_MAX_RETRY_MS);
    // never connected: 5 s doubling, forgotten after its 7th failure in a row
    const delays = failUntil(pool, clock, '10.0.0.7:2', Number.MAX_SAFE_INTEGER);
    expect(delays).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000]);
    expect(pool.get('10.0.0.7:2')).toBeUndefined();
  });
});

describe('PeerPool bans cover the peer, not one connection (admit)', () => {
  const id = (n: number): Buffer => Buffer.from(`-XX0001-${String(n).padStart(12, '0')}`, 'latin1');

  it('a banned peer is refused from any port by its IP and peer id, and by its listening address; another peer at that IP is let in', () => {
    const pool = new PeerPool(fakeClock().now);
    pool.add([{ host: '127.0.0.1', port: 7302 }], true);
    pool.ban('127.0.0.1:7302', 'sent a corrupt piece 5', { ip: '127.0.0.1', peerId: id(1), listen: { host: '127.0.0.1', port: 7302 } });
    expect(pool.admit({ ip: '127.0.0.1', peerId: id(1) })).toEqual({ refused: 'banned: sent a corrupt piece 5', banned: true });
    expect(pool.admit({ ip: '127.0.0.1', peerId: id(2), listen: { host: '127.0.0.1', port: 7302 } }).refused).toBe('banned: sent a corrupt piece 5');
    expect(pool.banReason('127.0.0.1:7302')).toBe('sent a corrupt piece 5');
    // the same peer id at another IP is another peer; another peer id at this IP too
    expect(pool.admit({ ip: '127.0.0.2', peerId: id(1) })).toEqual({ refused: undefined, probation: false });
    expect(pool.admit({ ip: '127.0.0.1', peerId: id(3), listen: { host: '127.0.0.1', port: 7303 } })).toEqual({ refused: undefined, probation: false });
    expect(pool.bansAt('127.0.0.1')).toBe(1);
    // the banned listening address is never dialed again, even though the user gave it
    expect(pool.add([{ host: '127.0.0.1', port: 7302 }], true)).toBe(0);
  });

  it('after two bans at an IP, a newcomer connecting from there is let in once per window, on probation; the window doubles per ban up to 5 min; proven peers come in at once', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const ip = '127.0.0.1';
    const incoming = (n: number, listen?: number) => ({ ip, peerId: id(n), incoming: true, ...(listen ? { listen: { host: ip, port: listen } } : {}) });
    pool.prove({ ip, peerId: id(100), listen: { host: ip, port: 6000 } }); // an honest seed whose piece verified
    pool.ban(`${ip}:40001`, 'corrupt', incoming(1));
    expect(pool.admit(incoming(2))).toEqual({ refused: undefined, probation: false }); // one ban: not suspect
    pool.ban(`${ip}:40002`, 'corrupt', incoming(2));
    // suspect: the window of the second ban runs
    const refused = pool.admit(incoming(3));
    expect(refused.refused).toMatch(/2 peers at 127\.0\.0\.1 were banned: one new peer from there is let in every 10 s/);
    expect(refused.refused !== undefined && refused.banned).toBe(false);
    // proven peers, by peer id or by listening address, are let in at once and not on probation
    expect(pool.admit(incoming(100))).toEqual({ refused: undefined, probation: false });
    expect(pool.admit(incoming(101, 6000))).toEqual({ refused: undefined, probation: false });
    // other IPs are not affected
    expect(pool.admit({ ip: '127.0.0.2', peerId: id(3), incoming: true })).toEqual({ refused: undefined, probation: false });
    clock.advance(SUSPECT_WINDOW_MS);
    expect(pool.admit(incoming(3))).toEqual({ refused: undefined, probation: true });
    expect(pool.admit(incoming(4)).refused).toBeDefined(); // one per window
    clock.advance(SUSPECT_WINDOW_MS);
    expect(pool.admit(incoming(4))).toEqual({ refused: undefined, probation: true });
    // each ban there doubles the window, at most MAX_SUSPECT_WINDOW_MS
    const windows: number[] = [];
    for (let n = 3; n < 12; n++) {
      pool.ban(`${ip}:${40000 + n}`, 'corrupt', incoming(n));
      let waited = 0;
      while (pool.admit(incoming(1000 + n)).refused !== undefined && waited < 3_600_000) {
        clock.advance(1_000);
        waited += 1_000;
      }
      windows.push(waited);
    }
    expect(windows.slice(0, 4)).toEqual([20_000, 40_000, 80_000, 160_000]);
    expect(Math.max(...windows)).toBe(MAX_SUSPECT_WINDOW_MS);
    // an hour without a ban there: forgotten
    clock.advance(IP_BAN_MEMORY_MS + 1);
    expect(pool.bansAt(ip)).toBe(0);
    expect(pool.admit(incoming(5000))).toEqual({ refused: undefined, probation: false });
  });

  it('the peers we dial at a suspect IP have their own window: a peer that keeps connecting to us cannot use it up', () => {
    const clock = fakeClock();
    const pool = new PeerPool(clock.now);
    const ip = '127.0.0.1';
    for (const n of [1, 2, 3]) pool.ban(`${ip}:${40000 + n}`, 'corrupt', { ip, peerId: id(n), incoming: true });
    // the hostile one connects again and again: refused until the window of its last ban ends
    expect(pool.admit({ ip, peerId: id(4), incoming: true }).refused).toBeDefined();
    // an honest seed there that we dial (an address a tracker gave) is let in at once, on probation; the next one a window later
    expect(pool.admit({ ip, peerId: id(50), listen: { host: ip, port: 6001 }, incoming: false })).toEqual({ refused: undefined, probation: true });
    expect(pool.admit({ ip, peerId: id(51), listen: { host: ip, port: 6002 }, incoming: false }).refused).toBeDefined();
    clock.advance(2 * SUSPECT_WINDOW_MS);
    expect(pool.admit({ ip, peerId: id(51), listen: { host: ip, port: 6002 }, incoming: false })).toEqual({ refused: undefined, probation: true });
    // a ban of a peer we dialed restarts the window of our dials only
    clock.advance(10 * SUSPECT_WINDOW_MS);
    pool.ban(`${ip}:6002`, 'corrupt', { ip, peerId: id(51), listen: { host: ip, port: 6002 }, incoming: false });
    expect(pool.admit({ ip, peerId: id(52), listen: { host: ip, port: 6003 }, incoming: false }).refused).toBeDefined();
    expect(pool.admit({ ip, peerId: id(5), incoming: true })).toEqual({ refused: undefined, probation: true });
  });

  it(`every record is bounded (${MAX_BAN_RECORDS}): the oldest goes`, () => {
    const pool = new PeerPool(fakeClock().now);
    for (let n = 0; n <= MAX_BAN_RECORDS; n++) {
      const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      pool.ban(`${ip}:1`, 'corrupt', { ip, peerId: id(n), listen: { host: ip, port: 2 } });
      pool.prove({ ip, peerId: id(n + 1) });
    }
    expect(pool.isBanned('10.0.0.0:1')).toBe(false);
    expect(pool.admit({ ip: '10.0.0.0', peerId: id(0) }).refused).toBeUndefined();
    expect(pool.admit({ ip: '10.0.0.1', peerId: id(1) }).refused).toBe('banned: corrupt');
    expect(pool.isProven({ ip: '10.0.0.0', peerId: id(1) })).toBe(false);
    expect(pool.isProven({ ip: `10.0.${(MAX_BAN_RECORDS >> 8) & 255}.${MAX_BAN_RECORDS & 255}`, peerId: id(MAX_BAN_RECORDS + 1) })).toBe(true);
  });
});
