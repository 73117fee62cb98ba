/**
 * Review of the per-IP limits (peer-pool.ts MAX_KNOWN_PER_IP and candidates'
 * perIp, torrent-session.ts Dialer.connectionsByIp / #onIncoming / #evictIdlePeer,
 * metadata-fetch.ts): one host must not get past them by being named in
 * another text form. Every socket here is on 127.0.0.1: `::ffff:7f00:1` is
 * how BEP 7 / BEP 11 compact entries for 127.0.0.1 decode (a v4-mapped
 * connect over loopback), and `127.1` & co. are what getaddrinfo reads as
 * 127.0.0.1 when a magnet's x.pe or --peer names them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentListeners } from '../../helpers/silent-listeners.js';
import { randomBytes } from 'node:crypto';
import { ipOf } from '../../../src/core/peer-address.js';
import { parseMagnet } from '../../../src/metainfo/magnet.js';
import { encode } from '../../../src/metainfo/bencode.js';
import { DEFAULT_MAX_PEERS_PER_IP, MAX_KNOWN_PER_IP, MAX_QUEUED_PER_IP, PeerPool } from '../../../src/session/peer-pool.js';
import { parseAnnounceResponse } from '../../../src/tracker/response.js';
import { parsePex } from '../../../src/wire/pex.js';
import { until } from '../../helpers/until.js';
import { stopAll, startSession } from '../../helpers/swarm.js';
import { testFetcher } from '../../helpers/metadata-fetcher.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { RawPeer as Raw } from '../../helpers/raw-peer.js';
import { delay, hostileLeecher, startHonestLeecher, startSeed } from './harness.js';

afterEach(stopAll);

/** A ut_pex payload whose added6 names 127.0.0.1 at `ports`, as a dual-stack peer sends it (BEP 11, 18-byte entries). */
function pexAdded6(ports: number[]): Buffer {
  const added6 = Buffer.concat(
    ports.map((port) => {
      const e = Buffer.alloc(18);
      e.writeUInt16BE(0xffff, 10);
      Buffer.from([127, 0, 0, 1]).copy(e, 12);
      e.writeUInt16BE(port, 16);
      return e;
    }),
  );
  return encode(new Map<string, Buffer>([['added6', added6]]));
}

describe('one IP under other names', () => {
  it('a v4-mapped address as compact decoding spells it (::ffff:7f00:1) is the same IP as 127.0.0.1', () => {
    const [fromPex] = parsePex(pexAdded6([6881])).added;
    expect(ipOf(fromPex!.host)).toBe(ipOf('127.0.0.1'));
  });

  it('IPv6 text variants a tracker\'s dictionary peers may use are one IP', () => {
    const reply = encode(
      new Map<string, unknown>([
        ['interval', 1800],
        [
          'peers',
          ['2001:db8::1', '2001:0db8:0:0:0:0:0:1', '2001:DB8::0:1', '0:0:0:0:0:ffff:7f00:1', '::ffff:7f00:0001', '::ffff:127.0.0.1'].map(
            (ip, i) => new Map<string, unknown>([['ip', ip], ['port', 6881 + i]]),
          ),
        ],
      ]) as never,
    );
    const hosts = parseAnnounceResponse(reply).peers.map((p) => ipOf(p.host));
    expect(new Set(hosts.slice(0, 3)).size).toBe(1);
    expect(new Set(hosts.slice(3)).size).toBe(1);
    expect(hosts[3]).toBe('127.0.0.1');
  });

  it(`the pool has at most ${MAX_KNOWN_PER_IP} dialable addresses of 127.0.0.1, however PEX spells it (more queue)`, () => {
    const pool = new PeerPool();
    const ports = Array.from({ length: MAX_KNOWN_PER_IP }, (_, i) => 10_000 + i);
    pool.add(ports.map((port) => ({ host: '127.0.0.1', port })));
    pool.add(parsePex(pexAdded6(ports.map((p) => p + 1_000))).added, false, true);
    const all = [...ports, ...ports.map((p) => p + 1_000)];
    const dialable = all.filter((port) => [`127.0.0.1:${port}`, `[::ffff:127.0.0.1]:${port}`].some((key) => pool.get(key)?.queued === false));
    expect(dialable).toHaveLength(MAX_KNOWN_PER_IP);
    expect(pool.size).toBeLessThanOrEqual(MAX_KNOWN_PER_IP + MAX_QUEUED_PER_IP);
  });

  it(`a download holds at most ${DEFAULT_MAX_PEERS_PER_IP} connections to 127.0.0.1 when PEX names it as ::ffff:127.0.0.1`, async () => {
    const { fx } = await startSeed();
    const lis = await silentListeners(12);
    try {
      const plain = lis.ports.slice(0, 6).map((port) => ({ host: '127.0.0.1', port }));
      const leech = await startSession({ meta: fx.meta, root: `${fx.work}/leech`, mode: 'download', useTrackers: false, foundPeers: plain });
      leech.session.addPeers(parsePex(pexAdded6(lis.ports.slice(6))).added, true);
      await until(() => lis.accepted() >= 6, 3_000, 'the first connections');
      await delay(1_000);
      expect(lis.accepted()).toBeLessThanOrEqual(DEFAULT_MAX_PEERS_PER_IP);
    } finally {
      await stopAll();
      await lis.close();
    }
  });

  it("a magnet's x.pe naming 127.0.0.1 as 127.1, 127.0.1, 2130706433 or 0x7f.1 is refused: each spelling would be another IP", async () => {
    const spellings = ['127.1', '127.0.1', '2130706433', '0x7f.1', '0x7f000001'];
    const magnet = parseMagnet(`magnet:?xt=urn:btih:${randomBytes(20).toString('hex')}&${spellings.map((h, i) => `x.pe=${h}:${6000 + i}`).join('&')}&x.pe=127.0.0.1:7000`);
    expect(magnet.peers).toEqual([{ host: '127.0.0.1', port: 7000 }]);
  });

  it('a hostname and the IP it resolves to share one limit: over it, the connection made through the name is closed at once', async () => {
    const lis = await silentListeners(6);
    // localhost resolves to 127.0.0.1 here (the listeners are bound there, so a connect proves it)
    const peers = lis.ports.map((port, i) => ({ host: i % 2 ? 'localhost' : '127.0.0.1', port }));
    const fetcher = testFetcher(randomBytes(20), [], { peers, maxPeersPerIp: 2, timeoutMs: 2_000 });
    try {
      const ran = fetcher.run();
      ran.catch(() => undefined);
      await until(() => lis.accepted() >= 2, 3_000, 'two connections');
      await delay(700);
      expect(lis.open.size).toBeLessThanOrEqual(2);
      await expect(ran).rejects.toThrow();
    } finally {
      fetcher.stop();
      await lis.close();
    }
  });
});

describe('the count stays true', () => {
  it('a flood of handshakes from one IP is refused while its busy peers keep downloading, and the IP is not locked out after', async () => {
    const LIMIT = 3;
    const { fx, seed } = await startSeed({ maxPeersPerIp: LIMIT });
    const honest = await startHonestLeecher(fx, [seed.address]);
    const flood: RawPeer[] = [];
    for (let i = 0; i < 40; i++) {
      const p = await Raw.connect('127.0.0.1', seed.address.port).catch(() => undefined);
      if (!p) continue;
      p.sendHandshake(fx.meta.infoHash);
      flood.push(p);
    }
    await delay(300);
    expect(seed.session.stats().peers).toBeLessThanOrEqual(LIMIT);
    await honest.done; // the busy honest leecher was never evicted for the flood
    for (const p of flood) p.close();
    await honest.leech.session.stop();
    await until(() => seed.session.stats().peers === 0, 5_000, 'every connection to end');
    // nothing counted twice or left behind: the IP gets its full limit again
    const again: RawPeer[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const p = await hostileLeecher(fx.meta, seed);
      p.send({ type: 'interested' });
      again.push(p);
    }
    await until(() => seed.session.stats().peers === LIMIT, 2_000, 'the IP to be let in again');
    expect(again.every((p) => !p.isClosed())).toBe(true);
  }, 40_000);

  it('a refused dial frees its place at once: behind 20 refused addresses of one IP, its live seed is reached within seconds', async () => {
    const { fx, seed } = await startSeed();
    const dead = await silentListeners(20);
    await dead.close(); // nothing listens there now: every dial is refused at once
    const peers = [...dead.ports.map((port) => ({ host: '127.0.0.1', port })), seed.address];
    const honest = await startHonestLeecher(fx, peers, { maxPeersPerIp: 2 }, 6_000);
    await honest.done;
  }, 30_000);
});
