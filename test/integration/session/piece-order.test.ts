/**
 * `pieceOrder: { sequential }` (tt download --sequential) against rate-limited
 * in-process tt seeds on 127.0.0.1: pieces are verified nearly in increasing
 * order, and with two seeds both stay busy.
 *
 * "Nearly", from the picker's rule (pieces/picker.ts): with peers that have
 * every piece, a piece starts only once every lower wanted piece has started.
 * So when piece i is verified, each lower piece not yet verified is in progress
 * (requested, or being hashed and written): at every `piece-verified` event,
 * the pieces below i still missing are at most picker.piecesInProgress. The
 * pieces are large (1 MiB, 64 blocks) so that the in-flight budget (at most 500
 * blocks per peer, session/pipeline.ts) spans a few of them, not the torrent:
 * rarest first fails this almost surely.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { TorrentSession } from '../../../src/session/torrent-session.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(stopAll);

const PIECE = 1024 * 1024;
const PIECES = 32;

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['movie.bin'], size: PIECES * PIECE - 12_345 }], pieceLength: PIECE, single: true });
  trackDir(fx.work);
  return fx;
}

interface Verified {
  index: number;
  /** pieces below it not yet verified */
  missingBelow: number;
  inProgress: number;
}

/** Every piece-verified event of `session`, with what was missing below it and in progress then. */
function recordOrder(session: TorrentSession, pieceCount: number): Verified[] {
  const verified = new Uint8Array(pieceCount);
  const log: Verified[] = [];
  session.on('piece-verified', (index) => {
    let missingBelow = 0;
    for (let j = 0; j < index; j++) if (!verified[j]) missingBelow++;
    verified[index] = 1;
    log.push({ index, missingBelow, inProgress: session.picker!.piecesInProgress });
  });
  return log;
}

function expectNearlyIncreasing(log: Verified[], pieceCount: number): void {
  const summary = log.map((v) => `${v.index}(${v.missingBelow}/${v.inProgress})`).join(' ');
  expect(log.length, summary).toBe(pieceCount);
  expect(log.filter((v) => v.missingBelow > v.inProgress), summary).toEqual([]);
  // the window is a few pieces, not the torrent: the check above says something
  expect(Math.max(...log.map((v) => v.inProgress)), summary).toBeLessThan(pieceCount / 2);
}

describe('sequential download', () => {
  it('one rate-limited seed: piece-verified events arrive nearly in increasing order', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 24 * PIECE });
    const out = join(fx.work, 'out');
    let log: Verified[] = [];
    const leech = await startSession(
      { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], pieceOrder: { sequential: true } },
      (s) => (log = recordOrder(s, fx.meta.pieceCount)),
    );
    await whenComplete(leech.session, 30_000);
    await expectSameData(fx, out);
    expectNearlyIncreasing(log, fx.meta.pieceCount);
    expect(leech.session.stats().failedPieces).toBe(0);
  });

  it('two seeds: both stay busy, and the order is still nearly increasing', async () => {
    const fx = await fixture();
    const seeds = await Promise.all([0, 1].map(() => startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 12 * PIECE })));
    const out = join(fx.work, 'out');
    let log: Verified[] = [];
    const leech = await startSession(
      { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: seeds.map((s) => s.address), pieceOrder: { sequential: true } },
      (s) => (log = recordOrder(s, fx.meta.pieceCount)),
    );
    await whenComplete(leech.session, 30_000);
    await expectSameData(fx, out);
    expectNearlyIncreasing(log, fx.meta.pieceCount);
    // each seed sent a fair part: the other was never left waiting for the lowest piece
    for (const s of seeds) expect(s.session.stats().uploaded).toBeGreaterThan(fx.meta.totalLength / 4);
  });

  it('a slow seed does not hold up the lowest pieces: a faster peer copies what it holds of them', async () => {
    // 64 pieces of 64 KiB; the slow seed sends 16 KiB/s (a block a second), the fast one 1 MiB/s (16
    // pieces a second: the download takes ~4 s, long enough for the rates to tell who is slow)
    const piece = 64 * 1024;
    const fx = await makeFixture({ files: [{ path: ['movie.bin'], size: 64 * piece - 999 }], pieceLength: piece, single: true });
    trackDir(fx.work);
    const slow = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 16 * 1024 });
    const fast = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
    const out = join(fx.work, 'out');
    const order: number[] = [];
    const leech = await startSession(
      { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [slow.address], pieceOrder: { sequential: true } },
      (s) => s.on('piece-verified', (index) => order.push(index)),
    );
    // the slow seed is asked first, so it holds the lowest pieces; then the fast one joins
    await until(() => leech.session.blocksInFlight > 0, 10_000, 'requests to the slow seed');
    leech.session.addPeers([fast.address]);
    await whenComplete(leech.session, 30_000);
    await expectSameData(fx, out);
    // without copies, the slow seed's pieces (0-7: its first 32 requests) came last, in endgame
    const at = (index: number): number => order.indexOf(index);
    for (let i = 0; i < 8; i++) expect(at(i), order.join(' ')).toBeLessThan(fx.meta.pieceCount / 2);
    expect(leech.session.stats().failedPieces).toBe(0);
  });
});
