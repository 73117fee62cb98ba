/**
 * One IP holding many connections (HARDENING.md "load"): a host that opens
 * connection after connection could take every peer slot, and a list naming
 * one IP under many ports (tracker, DHT, PEX) could make tt dial them all at
 * once. tt keeps each IP to `maxPeersPerIp` connections, both directions,
 * and when an IP is at its limit only that IP's own idle peers make room.
 * Everything here is 127.0.0.1, so every peer is the same IP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentListeners } from '../../helpers/silent-listeners.js';
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_PEERS_PER_IP } from '../../../src/session/peer-pool.js';
import { stopAll } from '../../helpers/swarm.js';
import { testFetcher } from '../../helpers/metadata-fetcher.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { RawPeer as Raw } from '../../helpers/raw-peer.js';
import { delay, expectDropped, hostileLeecher, startHonestLeecher, startSeed } from './harness.js';

afterEach(stopAll);

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

describe('incoming connections from one IP', () => {
  it('with maxPeersPerIp 4, four busy peers from one IP are let in; the fifth is refused, and a freed place is taken again', async () => {
    const LIMIT = 4;
    const { fx, seed } = await startSeed({ maxPeersPerIp: LIMIT });
    const refused: string[] = [];
    seed.session.on('peer-refused', (_peer, reason) => refused.push(reason));
    const busy: RawPeer[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const p = await hostileLeecher(fx.meta, seed);
      p.send({ type: 'interested' }); // busy: never evicted to make room
      busy.push(p);
    }
    await until(() => seed.session.stats().peers === LIMIT, 2_000, 'every busy peer');

    const extra = await Raw.connect('127.0.0.1', seed.address.port);
    extra.sendHandshake(fx.meta.infoHash);
    await expectDropped(extra);
    expect(refused).toEqual([`more than ${LIMIT} connections from one IP`]);
    expect(seed.session.stats().peers).toBe(LIMIT);

    busy[0]!.close();
    await until(() => seed.session.stats().peers === LIMIT - 1, 2_000, 'the close');
    const next = await hostileLeecher(fx.meta, seed); // answered: let in
    expect(next.isClosed()).toBe(false);
  });

  it("at the IP's limit, a newcomer from that IP replaces one of its idle peers; a whole download still completes", async () => {
    const { fx, seed } = await startSeed({ maxPeersPerIp: 3 });
    const idle = await Promise.all([0, 1, 2].map(() => hostileLeecher(fx.meta, seed)));
    await delay(2_300); // idle: no interest either way and silent for 2 s
    const honest = await startHonestLeecher(fx, [seed.address]);
    await honest.done;
    expect(idle.filter((p) => p.isClosed()).length).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('outgoing connections to one IP', () => {
  it(`by default a download given 12 addresses of one IP connects to ${DEFAULT_MAX_PEERS_PER_IP} at a time, and dials the next when one ends`, async () => {
    const { fx } = await startSeed();
    const lis = await silentListeners(12);
    const n = DEFAULT_MAX_PEERS_PER_IP;
    try {
      const leech = await startHonestLeecher(fx, lis.ports.map((port) => ({ host: '127.0.0.1', port }))); // tt's defaults
      leech.done.catch(() => undefined); // never completes: nobody here has data
      await until(() => lis.accepted() === n, 3_000, `${n} connections`);
      await delay(500);
      expect(lis.accepted()).toBe(n);
      const [first] = lis.open;
      first!.destroy();
      await until(() => lis.accepted() === n + 1, 3_000, 'one more connection');
      await delay(500);
      expect(lis.accepted()).toBe(n + 1);
      expect(lis.open.size).toBe(n);
      await leech.leech.session.stop();
    } finally {
      await lis.close();
    }
  });

  it('the magnet metadata phase keeps the same limit', async () => {
    const lis = await silentListeners(12);
    const fetcher = testFetcher(randomBytes(20), lis.ports, { maxPeersPerIp: 2, timeoutMs: 1_500 });
    try {
      const ran = fetcher.run();
      ran.catch(() => undefined);
      await until(() => lis.accepted() === 2, 3_000, 'two connections');
      await delay(500);
      expect(lis.accepted()).toBe(2);
      await expect(ran).rejects.toThrow();
    } finally {
      await lis.close();
    }
  });
});
