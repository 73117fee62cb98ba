/**
 * Crash safety of `tt download` (HARDENING.md "storage and resume"): kill -9
 * the built binary at 20 seeded-random moments against a rate-limited tt
 * seeder, restarting each time. After each kill the restarted run must claim
 * exactly the pieces that really hash on disk, progress must never go
 * backwards, little is fetched twice, and the final files are byte-identical.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, startTt, type TtProcess } from '../cli/tt-cli.js';
import { Rng, hashSeed } from '../../fuzz/engine.js';
import { piecesOnDisk } from './pieces-on-disk.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

const KILLS = 20;
const RNG_SEED = 'tt-crash-1';
const PIECE_LENGTH = 32 * 1024;
/** Slow enough that 20 short runs do not finish the download. */
const SEEDER_LIMIT_BPS = 256 * 1024;
const MIN_DELAY_MS = 50;
const MAX_DELAY_MS = 800;
/**
 * Bytes a kill may waste: what had arrived for pieces not yet verified and
 * written, plus what was in flight. One seeder serves our requests in order
 * at <= 256 KiB/s, so at a kill only the piece being received and the next
 * few requested ones are partial; 4 pieces (128 KiB, half a second of the
 * seeder's limit) per kill is a generous cap. Measured: ~9 KiB per kill.
 */
const WASTE_PER_KILL_BYTES = 4 * PIECE_LENGTH;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kill -9 at random moments', () => {
  it(`${KILLS} kills and restarts: nothing claimed that does not hash, progress kept, files identical`, async () => {
    const fx = await makeFixture({
      name: 'crashy',
      files: [
        { path: ['a.bin'], size: 2 * 1024 * 1024 + 7 },
        { path: ['sub', 'b.bin'], size: 1024 * 1024 + 333 },
        { path: ['c.bin'], size: 2 * 1024 * 1024 - 5 },
      ],
      pieceLength: PIECE_LENGTH,
    });
    trackDir(fx.work);
    const total = fx.meta.totalLength;
    const slow = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: SEEDER_LIMIT_BPS });
    const out = join(fx.work, 'out');
    const args = (peerPort: number): string[] => ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--json', '--peer', `127.0.0.1:${peerPort}`];
    const random = new Rng(hashSeed(RNG_SEED));
    const log: string[] = [];
    let previousGood = 0;
    let killedDuringDownload = 0;

    for (let k = 0; k < KILLS; k++) {
      const delay = random.range(MIN_DELAY_MS, MAX_DELAY_MS);
      // one run in four is timed from the spawn (may die while starting or checking), the rest from 'started'
      const fromSpawn = random.chance(0.25);
      const p: TtProcess = startTt(args(slow.address.port));
      if (!fromSpawn) await p.waitForEvent('started', 15_000);
      await sleep(delay);
      const wasRunning = p.exit === undefined;
      await p.kill9();
      const checked = p.events.find((e) => e.event === 'checked');
      // this run's own check of the previous crash's leftovers
      if (checked) {
        expect(checked.have, `run ${k}: claimed pieces vs pieces that hash after kill ${k - 1}\n${log.join('\n')}`).toBe(previousGood);
      }
      expect(p.stderr, p.describe()).not.toMatch(/^tt: /m);
      const good = await piecesOnDisk(fx.meta, out);
      expect(good.length, `progress went backwards after kill ${k}\n${log.join('\n')}`).toBeGreaterThanOrEqual(previousGood);
      if (wasRunning && p.events.some((e) => e.event === 'started')) killedDuringDownload++;
      log.push(`kill ${k}: ${fromSpawn ? 'spawn' : 'started'}+${delay} ms, checked ${checked?.have ?? '-'}, on disk ${good.length}/${fx.meta.pieceCount}`);
      previousGood = good.length;
      if (previousGood === fx.meta.pieceCount) break;
    }
    // a run interrupted mid-way, not one that had already finished
    expect(previousGood, log.join('\n')).toBeLessThan(fx.meta.pieceCount);
    expect(previousGood, log.join('\n')).toBeGreaterThan(0);
    expect(killedDuringDownload).toBeGreaterThanOrEqual(KILLS / 2);

    // the final run, against an unlimited seeder, completes from what is there
    const fast = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const last = startTt(args(fast.address.port));
    const exit = await last.waitForExit(30_000);
    expect(exit.code, last.describe()).toBe(0);
    expect(last.events.find((e) => e.event === 'checked')?.have).toBe(previousGood);
    await expectSameData(fx, out);

    const fetched = slow.session.stats().uploaded + fast.session.stats().uploaded;
    const twice = fetched - total;
    log.push(`fetched ${fetched} bytes for ${total}: ${twice} bytes fetched twice over ${KILLS} kills`);
    console.log(log.join('\n'));
    expect(fetched).toBeGreaterThanOrEqual(total);
    expect(twice, log.join('\n')).toBeLessThanOrEqual(KILLS * WASTE_PER_KILL_BYTES);
  }, 90_000);
});
