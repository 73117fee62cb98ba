import { describe, expect, it } from 'vitest';
import { MAX_RECORDS_PER_HOST, MIN_PEER_LIFETIME_S, Refusal, SwarmTable, type AnnounceInput } from '../../../src/tracker/swarm-table.js';
import { mulberry32 } from '../../helpers/prng.js';

const HASH = Buffer.alloc(20, 7);

function table(opts: { now?: () => number; random?: (n: number) => number } = {}): SwarmTable {
  const rng = mulberry32(42);
  return new SwarmTable({ intervalS: 60, random: (n) => Math.floor(rng() * n), ...opts });
}

function ann(host: string, port: number, more: Partial<AnnounceInput> = {}): AnnounceInput {
  return { infoHash: HASH, peerId: Buffer.alloc(20, port & 0xff), host, port, left: 100, event: 'started', numwant: 50, ...more };
}

describe('SwarmTable counts, kept as records change', () => {
  it('a leecher turning seeder, re-announcing, stopping and expiring keeps seeders/leechers true', () => {
    let now = 1_000_000;
    const t = table({ now: () => now });
    t.announce(ann('10.0.0.1', 1000));
    t.announce(ann('10.0.0.2', 1000));
    t.announce(ann('10.0.0.3', 1000, { left: 0 }));
    expect(t.size(HASH)).toEqual({ seeders: 1, leechers: 2 });
    // the same leecher again: no double count
    t.announce(ann('10.0.0.1', 1000, { event: undefined }));
    expect(t.size(HASH)).toEqual({ seeders: 1, leechers: 2 });
    t.announce(ann('10.0.0.1', 1000, { left: 0, event: 'completed' }));
    expect(t.size(HASH)).toEqual({ seeders: 2, leechers: 1 });
    expect(t.scrape(HASH)).toEqual({ complete: 2, incomplete: 1, downloaded: 1 });
    // a seeder announcing again with left > 0 (it lost data) is a leecher again
    t.announce(ann('10.0.0.3', 1000, { left: 5, event: undefined }));
    expect(t.size(HASH)).toEqual({ seeders: 1, leechers: 2 });
    const r = t.announce(ann('10.0.0.2', 1000, { event: 'stopped' }));
    expect(r).toEqual({ peers: [], seeders: 1, leechers: 1 });
    // a stop for a record never seen changes nothing
    t.announce(ann('10.0.0.9', 1000, { event: 'stopped' }));
    expect(t.size(HASH)).toEqual({ seeders: 1, leechers: 1 });
    // silent for longer than a record lives: everyone has expired (the next look after a second walks the swarm)
    now += MIN_PEER_LIFETIME_S * 1000 + 1_001;
    expect(t.size(HASH)).toEqual({ seeders: 0, leechers: 0 });
    t.sweep();
    expect(t.swarmCount).toBe(1); // it has a completed count to report
  });

  it('counts agree with a brute-force recount through 5,000 random announces, stops and expiries', () => {
    let now = 0;
    const t = table({ now: () => now });
    const model = new Map<string, { left: number; expiresAt: number }>();
    const rng = mulberry32(7);
    for (let step = 0; step < 5_000; step++) {
      now += Math.floor(rng() * 200);
      const host = `10.0.${Math.floor(rng() * 4)}.${Math.floor(rng() * 20)}`;
      const port = 6881 + Math.floor(rng() * 3);
      const key = `${host}:${port}`;
      const roll = rng();
      for (const [k, v] of model) if (v.expiresAt <= now) model.delete(k);
      if (roll < 0.15) {
        t.announce(ann(host, port, { event: 'stopped' }));
        model.delete(key);
      } else {
        const left = rng() < 0.3 ? 0 : 1 + Math.floor(rng() * 100);
        t.announce(ann(host, port, { left, event: undefined }));
        model.set(key, { left, expiresAt: now + MIN_PEER_LIFETIME_S * 1000 });
      }
      if (step % 50 === 0) now += 30_000 + Math.floor(rng() * 60_000);
      else continue;
      for (const [k, v] of model) if (v.expiresAt <= now) model.delete(k);
      now += 1_000; // so size() walks the swarm for expiry too
      for (const [k, v] of model) if (v.expiresAt <= now) model.delete(k);
      const seeders = [...model.values()].filter((v) => v.left === 0).length;
      expect(t.size(HASH)).toEqual({ seeders, leechers: model.size - seeders });
    }
  });
});

describe('SwarmTable expiry', () => {
  it('a peer re-announcing every 300 s (libtorrent\'s shortest) stays listed with --interval 120 or 10; silent, it goes', () => {
    for (const intervalS of [10, 120]) {
      let now = 5_000_000;
      const t = new SwarmTable({ intervalS, now: () => now });
      t.announce(ann('10.5.0.1', 6881, { left: 0 }));
      for (let k = 0; k < 12; k++) {
        now += 299_000;
        expect(t.size(HASH), `interval ${intervalS}, after ${k} re-announces`).toEqual({ seeders: 1, leechers: 0 });
        now += 1_000;
        t.announce(ann('10.5.0.1', 6881, { left: 0, event: undefined }));
      }
      now += MIN_PEER_LIFETIME_S * 1000 + 1_001;
      expect(t.size(HASH)).toEqual({ seeders: 0, leechers: 0 });
    }
  });

  it('a long interval keeps records for two of them', () => {
    let now = 0;
    const t = new SwarmTable({ intervalS: 3600, now: () => now });
    t.announce(ann('10.5.0.2', 6881));
    now += 2 * 3600_000 - 2_000;
    expect(t.size(HASH).leechers).toBe(1);
    now += 3_000;
    expect(t.size(HASH).leechers).toBe(0);
  });
});

describe('SwarmTable sampling', () => {
  it('never returns the asker, never the same record twice, and at most numwant', () => {
    const t = table();
    for (let i = 0; i < 30; i++) t.announce(ann(`10.0.1.${i}`, 2000));
    for (let i = 0; i < 30; i++) {
      for (const numwant of [0, 1, 5, 29, 30, 200]) {
        const r = t.announce(ann(`10.0.1.${i}`, 2000, { numwant, event: undefined }));
        const keys = r.peers.map((p) => `${p.host}:${p.port}`);
        expect(keys).not.toContain(`10.0.1.${i}:2000`);
        expect(new Set(keys).size).toBe(keys.length);
        expect(keys.length).toBe(Math.min(numwant, 29));
      }
    }
  });

  it('a newcomer (not yet in the swarm) is left out of its own reply; a stop gets nobody', () => {
    const t = table();
    t.announce(ann('10.0.2.1', 1));
    const r = t.announce(ann('10.0.2.2', 1));
    expect(r.peers.map((p) => p.host)).toEqual(['10.0.2.1']);
    expect(t.announce(ann('10.0.2.1', 1, { event: 'stopped' })).peers).toEqual([]);
  });

  it('is uniform: from 100 peers, 5 at a time over 20,000 asks, each is given 5% of the time (±1%)', () => {
    const t = table({ random: (() => { const r = mulberry32(99); return (n: number) => Math.floor(r() * n); })() });
    for (let i = 0; i < 100; i++) t.announce(ann(`10.1.0.${i}`, 3000));
    const seen = new Map<string, number>();
    const asks = 20_000;
    for (let k = 0; k < asks; k++) {
      // the asker is the last one added, the first one, or one in the middle: its index is skipped wherever it is
      const asker = [0, 50, 99][k % 3]!;
      for (const p of t.announce(ann(`10.1.0.${asker}`, 3000, { numwant: 5, event: undefined })).peers) seen.set(p.host, (seen.get(p.host) ?? 0) + 1);
    }
    expect(seen.size).toBe(100);
    for (const [host, n] of seen) {
      const asked = [0, 50, 99].includes(Number(host.split('.')[3])) ? (asks * 2) / 3 : asks;
      const share = n / asked / 5;
      expect(share, host).toBeGreaterThan(0.0101 - 0.0025);
      expect(share, host).toBeLessThan(0.0101 + 0.0025);
    }
  });

  it('removing records from the middle keeps every survivor reachable', () => {
    const t = table();
    for (let i = 0; i < 40; i++) t.announce(ann(`10.2.0.${i}`, 4000));
    for (let i = 0; i < 40; i += 3) t.announce(ann(`10.2.0.${i}`, 4000, { event: 'stopped' }));
    const r = t.announce(ann('10.9.9.9', 1, { numwant: 200 }));
    const hosts = new Set(r.peers.map((p) => p.host));
    const expected = new Set(Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 3 !== 0).map((i) => `10.2.0.${i}`));
    expect(hosts).toEqual(expected);
  });
});

describe('SwarmTable caps', () => {
  it(`one host keeps its newest ${MAX_RECORDS_PER_HOST} records; the allow-list refuses other torrents`, () => {
    const t = table();
    for (let port = 1; port <= MAX_RECORDS_PER_HOST + 10; port++) t.announce(ann('10.3.0.1', port));
    expect(t.size(HASH).leechers).toBe(MAX_RECORDS_PER_HOST);
    const ports = t.announce(ann('10.3.0.2', 1, { numwant: 200 })).peers.filter((p) => p.host === '10.3.0.1').map((p) => p.port);
    expect(Math.min(...ports)).toBe(11);
    const only = new SwarmTable({ intervalS: 60, allowList: [HASH] });
    expect(() => only.announce(ann('10.3.0.1', 1, { infoHash: Buffer.alloc(20, 1) }))).toThrow(Refusal);
  });
});
