/**
 * tt talking to tt on 127.0.0.1: a download from a seeder, a three-peer swarm
 * where leechers trade pieces, and resume from a partial copy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { open, mkdir, copyFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { MAX_QUEUE_DEPTH, SESSION_QUEUE_BLOCKS } from '../../../src/session/pipeline.js';
import { ODD_FILES, expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(stopAll);

describe('tt to tt on loopback', () => {
  it('downloads a multi-file torrent with odd sizes from a tt seeder, bytes identical', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    expect(seed.session.have.complete).toBe(true);
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address] });
    await whenComplete(leech.session);
    await expectSameData(fx, out);
    const stats = leech.session.stats();
    expect(stats.have).toBe(fx.meta.pieceCount);
    expect(stats.failedPieces).toBe(0);
    expect(seed.session.stats().uploaded).toBeGreaterThanOrEqual(fx.meta.totalLength);
  });

  it('dials past a list of dead peers at once: the live one behind them connects within a tick', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    // 64 ports that refuse (servers opened, then closed): four batches of half-open dials
    const servers = await Promise.all(
      Array.from({ length: 64 }, () => new Promise<Server>((res) => {
        const srv = createServer();
        srv.listen(0, '127.0.0.1', () => res(srv));
      })),
    );
    const dead = servers.map((srv) => ({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port }));
    await Promise.all(servers.map((srv) => new Promise((res) => srv.close(res))));
    // what happened, for the failure message
    const log: string[] = [];
    const t0 = Date.now();
    const since = (): string => `+${Date.now() - t0}ms`;
    // the moment the seed connects, from the event: polling peerCount missed it when the small
    // download finished and closed the connection ('both are seeds') between two polls
    let seedConnectedAt: number | undefined;
    const seedKey = `127.0.0.1:${seed.address.port}`;
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'out'), mode: 'download', peers: [...dead, seed.address], maxPeersPerIp: 100 }, (s) => { // all 127.0.0.1: dial them as if they were 65 hosts
      s.on('peer-dial-failed', (peer, reason) => log.push(`${since()} dial ${peer} failed: ${reason}`));
      s.on('peer-connected', (peer) => {
        log.push(`${since()} connected ${peer}`);
        if (peer === seedKey) seedConnectedAt ??= Date.now();
      });
      s.on('peer-closed', (peer, reason) => log.push(`${since()} closed ${peer}: ${reason}`));
    });
    for (let i = 0; i < 500 && seedConnectedAt === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    // before: each failed dial waited for the 1 s tick to free its slot, so the seed was dialed after >= 3 s
    const failed = log.filter((l) => l.includes(' failed: ')).length;
    expect(seedConnectedAt, `${failed} dials failed; seed ${seed.address.port}; last events:\n${log.slice(-12).join('\n')}`).toBeDefined();
    expect(seedConnectedAt! - t0).toBeLessThan(1_500);
    await whenComplete(leech.session);
    await expectSameData(fx, join(fx.work, 'out'));
  });

  it('shares one in-flight budget among the peers it downloads from', async () => {
    // 3 seeders at 8 MiB/s each for ~2.7 s: after the first tick each pipe is sized by rate
    // and capped at 500; without the shared budget 1486 blocks were in flight at once
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size: 64 * 1024 * 1024 + 777 }], pieceLength: 256 * 1024 });
    trackDir(fx.work);
    const seeds = [];
    for (let i = 0; i < 3; i++) seeds.push(await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 8 * 1024 * 1024 }));
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: seeds.map((s) => s.address) });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, leech.session.blocksInFlight)), 5);
    try {
      await whenComplete(leech.session, 60_000);
    } finally {
      clearInterval(sampler);
    }
    await expectSameData(fx, out);
    expect(most).toBeGreaterThan(MAX_QUEUE_DEPTH); // the pipes did widen past one peer's cap
    expect(most).toBeLessThanOrEqual(SESSION_QUEUE_BLOCKS);
  }, 90_000);

  it('two seeds that meet part at once and do not dial each other again for a minute', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const b = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const a = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', peers: [b.address] });
    const key = `127.0.0.1:${b.address.port}`;
    const closed: string[] = [];
    a.session.on('peer-closed', (peer, reason) => closed.push(`${peer}: ${reason}`));
    const t0 = Date.now();
    await until(() => closed.length > 0, 5_000, 'the seeds to part');
    expect(closed).toEqual([`${key}: both are seeds`]);
    await until(() => a.session.pool.get(key)?.connected === false, 2_000, 'the pool to know');
    // a handshake no longer resets this wait (it was 5 s, every 5 s, for as long as both ran)
    expect(a.session.pool.get(key)!.nextAttemptAt - t0).toBeGreaterThanOrEqual(59_000);
  });

  it('refuses to seed a folder with missing pieces unless partial is allowed', async () => {
    const fx = await makeFixture();
    trackDir(fx.work);
    const empty = join(fx.work, 'nothing');
    await expect(startSession({ meta: fx.meta, root: empty, mode: 'seed' })).rejects.toThrow(/missing/);
    const partial = await startSession({ meta: fx.meta, root: empty, mode: 'seed', allowPartial: true });
    expect(partial.session.have.count).toBe(0);
  });

  it('two leechers and a rate-limited seed: the leechers trade pieces with each other', async () => {
    const fx = await makeFixture({
      files: [{ path: ['big.bin'], size: 2 * 1024 * 1024 + 333 }],
      pieceLength: 16_384,
    });
    trackDir(fx.work);
    // the seed is slow, so the leechers profit from each other
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 512 * 1024 });
    const t0 = Date.now();
    const a = await startSession({ meta: fx.meta, root: join(fx.work, 'a'), mode: 'download', peers: [seed.address] });
    const b = await startSession({ meta: fx.meta, root: join(fx.work, 'b'), mode: 'download', peers: [seed.address, a.address] });
    await Promise.all([whenComplete(a.session, 60_000), whenComplete(b.session, 60_000)]);
    await expectSameData(fx, join(fx.work, 'a'));
    await expectSameData(fx, join(fx.work, 'b'));
    const seconds = (Date.now() - t0) / 1000;
    const fromSeed = seed.session.stats().uploaded;
    const traded = a.session.stats().uploaded + b.session.stats().uploaded;
    // the seed's limit holds (a quarter-second burst allowed)
    expect(fromSeed).toBeLessThanOrEqual(512 * 1024 * (seconds + 0.5));
    // not everything came from the seed: the leechers traded a real share
    expect(fromSeed).toBeLessThan(2 * fx.meta.totalLength);
    expect(traded).toBeGreaterThan(fx.meta.totalLength / 4);
    expect(traded + fromSeed).toBeGreaterThanOrEqual(2 * fx.meta.totalLength);
  }, 90_000);

  it('resumes from a partial copy: verifies what is there and fetches only the rest', async () => {
    const fx = await makeFixture({ files: ODD_FILES });
    trackDir(fx.work);
    const out = join(fx.work, 'out');
    // copy the complete data, then damage the last file: its pieces must be fetched again
    for (const f of fx.files) {
      const dst = join(out, fx.meta.name, ...f.path);
      await mkdir(join(dst, '..'), { recursive: true });
      await copyFile(join(fx.seedRoot, fx.meta.name, ...f.path), dst);
    }
    const last = fx.files[fx.files.length - 1]!;
    const h = await open(join(out, fx.meta.name, ...last.path), 'r+');
    await h.write(Buffer.alloc(100_000, 0xee), 0, 100_000, 50_000);
    await h.close();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address] });
    const haveAtStart = leech.session.have.count;
    expect(haveAtStart).toBeGreaterThan(0);
    expect(haveAtStart).toBeLessThan(fx.meta.pieceCount);
    await whenComplete(leech.session);
    await expectSameData(fx, out);
    const missingBytes = (fx.meta.pieceCount - haveAtStart) * fx.meta.pieceLength;
    expect(leech.session.stats().downloaded).toBeLessThanOrEqual(missingBytes);
    expect(leech.session.stats().downloaded).toBeGreaterThan(0);
  });
});
