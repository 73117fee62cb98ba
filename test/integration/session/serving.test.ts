/**
 * How a seeding session serves blocks: read-cache buffers are recycled only
 * once no send points into them (data larger than the cache, several leechers
 * at once), and pieces too large to cache whole are served block by block.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { READ_CACHE_BYTES } from '../../../src/session/read-cache.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete } from '../../helpers/swarm.js';
import { PIECE_LENGTH, getUnchoked, hostileLeecher, startSeed } from '../hostile/harness.js';
import { until } from '../../helpers/until.js';

afterEach(stopAll);

describe('serving', () => {
  it('three leechers at once over data larger than the read cache all get identical bytes', async () => {
    const size = READ_CACHE_BYTES + 8 * 1024 * 1024 + 12_345;
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size }], pieceLength: 256 * 1024 });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadSlots: 3 });
    const leechers = await Promise.all(
      [0, 1, 2].map((i) => startSession({ meta: fx.meta, root: join(fx.work, `out${i}`), mode: 'download', peers: [seed.address] })),
    );
    await Promise.all(leechers.map((l) => whenComplete(l.session, 60_000)));
    for (const [i, l] of leechers.entries()) {
      // a block sent from a buffer recycled too early fails its piece's hash
      expect(l.session.stats().failedPieces).toBe(0);
      await expectSameData(fx, join(fx.work, `out${i}`));
    }
    expect(seed.session.stats().uploaded).toBeGreaterThanOrEqual(size);
  }, 90_000);

  it('blocks queued for a reader that stalls are sent intact after their pieces left the cache and its buffers were reused', async () => {
    const pieceLength = 256 * 1024;
    const size = READ_CACHE_BYTES + 16 * 1024 * 1024;
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size }], pieceLength });
    trackDir(fx.work);
    const data = fx.files[0]!.data;
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const slow = await RawPeer.connect('127.0.0.1', seed.address.port, { timeoutMs: 30_000 });
    slow.sendHandshake(fx.meta.infoHash);
    await slow.readHandshake();
    slow.send({ type: 'interested' });
    await slow.waitFor((m) => m.type === 'unchoke');
    slow.pauseReading();
    const pieces = 24; // 384 requests: under the seed's queue cap
    for (let index = 0; index < pieces; index++) {
      for (let begin = 0; begin < pieceLength; begin += BLOCK_SIZE) slow.send({ type: 'request', index, begin, length: BLOCK_SIZE });
    }
    // until the seed has handed all it can to the stalled socket (kernel buffer + its own queue)
    let last = -1;
    for (let i = 0; i < 100 && seed.session.stats().uploaded !== last; i++) {
      last = seed.session.stats().uploaded;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThan(pieces * pieceLength); // some blocks are still waiting in the seed
    // a fast leecher pulls everything through the cache: pieces 0..23 are evicted and their buffers reused
    const out = join(fx.work, 'out');
    const fast = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address] });
    await whenComplete(fast.session, 60_000);
    await expectSameData(fx, out);
    slow.resumeReading();
    const blocks = pieces * (pieceLength / BLOCK_SIZE);
    let bad = 0;
    for (let n = 0; n < blocks; n++) {
      const m = await slow.waitFor((x) => x.type === 'piece');
      if (m.type !== 'piece') continue;
      const at = m.index * pieceLength + m.begin;
      if (!m.block.equals(data.subarray(at, at + m.block.length))) bad++;
    }
    expect(bad).toBe(0);
    slow.close();
  }, 90_000);

  it('a torrent whose pieces are too large to cache whole is served block by block', async () => {
    const pieceLength = 2 * READ_CACHE_BYTES; // not even one fits
    const fx = await makeFixture({ files: [{ path: ['huge-pieces.bin'], size: pieceLength + 1_000_003 }], pieceLength });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seed.address] });
    await whenComplete(leech.session, 60_000);
    await expectSameData(fx, out);
    expect(leech.session.stats().failedPieces).toBe(0);
  }, 90_000);

  it('under an upload limit, leechers asking at the same time share it (none is starved)', async () => {
    // 64 KiB/s: four blocks a second to share. Each serve loop used to retry its own timer,
    // and the loop that had just sent always re-armed first: one leecher got every block.
    const { fx, seed } = await startSeed({ uploadLimit: 64 * 1024 });
    const peers = await Promise.all([0, 1].map(() => hostileLeecher(fx.meta, seed)));
    for (const p of peers) await getUnchoked(p);
    const perPiece = PIECE_LENGTH / BLOCK_SIZE;
    for (const p of peers) {
      for (let i = 0; i < 16; i++) p.send({ type: 'request', index: Math.floor(i / perPiece), begin: (i % perPiece) * BLOCK_SIZE, length: BLOCK_SIZE });
    }
    const served = (): number[] => peers.map((p) => p.received.filter((m) => m.type === 'piece').length);
    await until(() => served().reduce((a, b) => a + b, 0) >= 10, 5_000, 'ten blocks served');
    const counts = served();
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10);
    expect(Math.min(...counts), `blocks served: ${counts.join(' / ')}`).toBeGreaterThanOrEqual(4);
  });
});
