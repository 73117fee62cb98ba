/**
 * Fast resume across runs (storage/resume.ts): a download stopped short of
 * complete leaves `.<hash>.tt-resume`; the next run takes the pieces it
 * vouches for without hashing them, hashes again what a changed file
 * touches, completes with the right bytes, and removes the record.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { resumeFileName } from '../../../src/storage/resume.js';
import type { TorrentSession } from '../../../src/session/torrent-session.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

afterEach(stopAll);

const PIECE = 32_768;
/** Four files; the seed sends ~1 MiB/s, so a run stopped after ~0.7 s has part of it. */
async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({
    files: [
      { path: ['a.bin'], size: 700_000 },
      { path: ['b.bin'], size: 500_001 },
      { path: ['c.bin'], size: 300_000 },
      { path: ['d.bin'], size: 123_457 },
    ],
    pieceLength: PIECE,
  });
  trackDir(fx.work);
  return fx;
}

interface Run {
  leech: Running;
  checked: { have: number; resumed: number };
}

async function leech(fx: Fixture, seedPort: number, out: string, extra: { recheck?: boolean } = {}): Promise<Run> {
  const checked = { have: -1, resumed: -1 };
  const leech = await startSession(
    { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port: seedPort }], ...extra },
    (s: TorrentSession) => s.on('checked', (have, _n, resumed) => Object.assign(checked, { have, resumed })),
  );
  return { leech, checked };
}

/** Run a download until it has `pieces` pieces, then stop it (as Ctrl-C does). */
async function interrupted(fx: Fixture, seedPort: number, out: string, pieces: number): Promise<{ had: number; has: (i: number) => boolean }> {
  const run = await leech(fx, seedPort, out);
  await until(() => run.leech.session.have.count >= pieces, 20_000, `${pieces} pieces`);
  await run.leech.session.stop();
  const { have } = run.leech.session;
  return { had: have.count, has: (i) => have.has(i) };
}

describe('fast resume', () => {
  it('an interrupted download resumes from its record: no piece hashed again, the rest fetched, the record removed', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
    const out = join(fx.work, 'out');
    const { had } = await interrupted(fx, seed.address.port, out, 20);
    expect(had).toBeLessThan(fx.meta.pieceCount);
    expect(existsSync(join(out, resumeFileName(fx.meta)))).toBe(true);

    const second = await leech(fx, seed.address.port, out);
    expect(second.checked).toEqual({ have: had, resumed: had });
    await whenComplete(second.leech.session);
    await second.leech.session.stop();
    await expectSameData(fx, out);
    expect(existsSync(join(out, resumeFileName(fx.meta)))).toBe(false);
  });

  it('a file changed after the interruption: its pieces are hashed again (the damaged ones fetched again), the others trusted', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
    const out = join(fx.work, 'out');
    const { had, has } = await interrupted(fx, seed.address.port, out, 25);
    const aPieces = Math.ceil(700_000 / PIECE); // a.bin's pieces (the last one shared with b.bin)
    // damage a piece of a.bin that was verified, without changing the file's size
    const damaged = Array.from({ length: aPieces - 1 }, (_, i) => i).find(has);
    expect(damaged).toBeDefined();
    const fh = await open(join(out, fx.meta.name, 'a.bin'), 'r+');
    await fh.write(Buffer.alloc(100, 0x55), 0, 100, damaged! * PIECE);
    await fh.close();
    const second = await leech(fx, seed.address.port, out);
    expect(second.checked.resumed).toBeLessThan(had);
    expect(second.checked.resumed).toBeGreaterThanOrEqual(had - aPieces);
    expect(second.checked.have).toBe(had - 1); // the damaged piece failed its hash; the rest of a.bin checked out
    await whenComplete(second.leech.session);
    await expectSameData(fx, out);
  });

  it('recheck: every piece is hashed again, none taken from the record', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
    const out = join(fx.work, 'out');
    const { had } = await interrupted(fx, seed.address.port, out, 15);
    const second = await leech(fx, seed.address.port, out, { recheck: true });
    expect(second.checked).toEqual({ have: had, resumed: 0 });
    await second.leech.session.stop();
    expect(existsSync(join(out, resumeFileName(fx.meta)))).toBe(true); // written again
  });

  it('a download that completes leaves no record, and a seed never writes one', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const run = await leech(fx, seed.address.port, out);
    await whenComplete(run.leech.session);
    await run.leech.session.stop();
    await seed.session.stop();
    expect(existsSync(join(out, resumeFileName(fx.meta)))).toBe(false);
    expect(existsSync(join(fx.seedRoot, resumeFileName(fx.meta)))).toBe(false);
  });
});
