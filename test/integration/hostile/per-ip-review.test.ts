/**
 * Review of the per-IP limits (peer-pool.ts MAX_KNOWN_PER_IP and candidates'
 * perIp, torrent-session.ts #connectionsByIp / #onIncoming / #evictIdlePeer,
 * metadata-fetch.ts): one host must not get past them by being named in
 * another text form. Every socket here is on 127.0.0.1: `::ffff:7f00:1` is
 * how BEP 7 / BEP 11 compact entries for 127.0.0.1 decode (a v4-mapped
 * connect over loopback), and `127.1` & co. are what getaddrinfo reads as
 * 127.0.0.1 when a magnet's x.pe or --peer names them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../../helpers/until.js';
import { stopAll } from '../../helpers/swarm.js';
import type { RawPeer } from '../../helpers/raw-peer.js';
import { RawPeer as Raw } from '../../helpers/raw-peer.js';
import { delay, hostileLeecher, startHonestLeecher, startSeed } from './harness.js';

afterEach(stopAll);

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
});
