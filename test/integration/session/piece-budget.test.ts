/**
 * Large pieces: the piece buffers a download holds (pieces being downloaded,
 * hashed, written) stay within the piece budget, at least one piece,
 * whatever the piece length, and the bytes arrive right. Without the budget
 * the requests in flight (~16 MiB) spread over pieces, each with its own
 * buffer, plus the ones hashing and writing: several pieces at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete } from '../../helpers/swarm.js';

afterEach(stopAll);

const MiB = 1024 * 1024;
const PIECE = 8 * MiB;

describe('piece buffer budget', () => {
  it('with 8 MiB pieces and an 8 MiB budget, at most one piece buffer is held; the download completes', async () => {
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size: 5 * PIECE + 12_345 }], pieceLength: PIECE });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const budget = PIECE;
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], pieceBufferBudget: budget });
    // each verified piece makes room for the next: it is asked for at once, not at the next tick
    const askedAtOnce: boolean[] = [];
    leech.session.on('piece-verified', () => queueMicrotask(() => askedAtOnce.push(leech.session.done || leech.session.blocksInFlight > 0)));
    let sampled = 0;
    const sampler = setInterval(() => (sampled = Math.max(sampled, leech.session.pieceBufferBytes.held)), 2);
    try {
      await whenComplete(leech.session, 60_000);
    } finally {
      clearInterval(sampler);
    }
    await expectSameData(fx, out);
    const { peak } = leech.session.pieceBufferBytes;
    expect(sampled).toBeGreaterThan(0); // the samples saw buffers held...
    expect(sampled).toBeLessThanOrEqual(peak); // ...never more than the pool's own peak
    expect(peak).toBeLessThanOrEqual(budget);
    expect(askedAtOnce).toEqual(Array(fx.meta.pieceCount).fill(true));
  }, 90_000);

  it('a budget below one piece still downloads, one piece at a time, and two seeders share that piece', async () => {
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size: 3 * PIECE + 777 }], pieceLength: PIECE });
    trackDir(fx.work);
    const seeds = [
      await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }),
      await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }),
    ];
    const out = join(fx.work, 'out');
    const leech = await startSession({
      meta: fx.meta,
      root: out,
      mode: 'download',
      useTrackers: false,
      peers: seeds.map((s) => s.address),
      pieceBufferBudget: 1 * MiB,
    });
    await whenComplete(leech.session, 60_000);
    await expectSameData(fx, out);
    expect(leech.session.pieceBufferBytes.peak).toBeLessThanOrEqual(PIECE);
    // both served: with one piece in progress at a time, the second seeder got blocks of the piece the first was on
    for (const s of seeds) expect(s.session.stats().uploaded).toBeGreaterThan(0);
  }, 90_000);
});
