/**
 * Deleting the output folder, or one of its files, while `tt download` runs
 * must not end in "complete", exit 0 (README: exit 0 only when every piece is
 * verified on disk). tt's writes go on into the unlinked files through the
 * handles it holds, so nothing fails by itself: storage notices the deletion
 * (storage.ts: the deferred stamp's fstat says nlink 0, or a reopen finds no
 * file) and fails the next write; and before calling the download complete
 * the session must check that every file is still there as the file tt wrote
 * (TorrentStorage.assertFilesInPlace), which catches a file deleted after its
 * last write, or one complete from the start that is never written.
 *
 * The seeder runs in this process with an upload limit, so the download takes
 * a few seconds and the deletion lands in the middle of it.
 */
import { cp, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeFixture, startSession, stopAll, whenComplete, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, startTt } from '../cli/tt-cli.js';

const workDirs: string[] = [];

afterEach(async () => {
  await killAllTt();
  await stopAll();
  for (const dir of workDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const PIECE = 64 * 1024;

async function slowSwarm(files: { path: string[]; size: number }[]): Promise<{ fx: Fixture; peer: string[] }> {
  const fx = await makeFixture({ name: 'big', files, pieceLength: PIECE });
  workDirs.push(fx.work);
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
  return { fx, peer: ['--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`] };
}

async function gone(path: string): Promise<boolean> {
  return stat(path).then(
    () => false,
    () => true,
  );
}

describe('deleted or moved while downloading', () => {
  it('the whole output folder removed mid-download (rm -rf): exit 6 naming a deleted file, never "complete"', async () => {
    const { fx, peer } = await slowSwarm([
      { path: ['one.bin'], size: 3 * 1024 * 1024 + 11 },
      { path: ['two.bin'], size: 3 * 1024 * 1024 - 11 },
    ]);
    const out = join(fx.work, 'orm');
    const tt = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '--json']);
    await tt.waitForEvent('progress', 20_000, (e) => (e.have as number) > 0);
    await rm(out, { recursive: true });
    const exit = await tt.waitForExit(60_000);
    expect(exit.code, tt.describe()).toBe(6);
    expectOneErrorLine(tt, /^tt: cannot write ".*[/]orm[/]big[/](one|two)\.bin": deleted or moved while downloading/);
    expect(tt.events.some((e) => e.event === 'complete')).toBe(false);
    expect(await gone(out)).toBe(true);
  }, 90_000);

  it('the torrent folder renamed mid-download (mv): the download stops at the next periodic check, not when the last piece is in', async () => {
    const { fx } = await slowSwarm([{ path: ['one.bin'], size: 6 * 1024 * 1024 }]); // ~6 s at 1 MiB/s
    const seedAddress = (await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 })).address;
    const out = join(fx.work, 'mv');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seedAddress], filesCheckMs: 300 });
    const failed = new Promise<Error>((resolve) => leech.session.once('error', resolve));
    for (let i = 0; i < 200 && leech.session.have.count === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const movedAt = Date.now();
    await rename(join(out, 'big'), join(out, 'big-moved'));
    const err = await failed;
    expect(err.message).toMatch(/^cannot write ".*[/]mv[/]big[/]one\.bin": deleted or moved while downloading/);
    expect(Date.now() - movedAt).toBeLessThan(3_000);
    expect(leech.session.done).toBe(false);
  }, 60_000);

  it('nothing touched: the periodic check never trips on files still being written (sequential, so a file is short until its last piece)', async () => {
    const { fx } = await slowSwarm([
      { path: ['one.bin'], size: 2 * 1024 * 1024 + 5 },
      { path: ['empty.txt'], size: 0 },
      { path: ['two.bin'], size: 1024 * 1024 },
    ]);
    const seedAddress = (await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 })).address;
    const out = join(fx.work, 'untouched');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: [seedAddress], filesCheckMs: 200, pieceOrder: { sequential: true } });
    const errors: Error[] = [];
    leech.session.on('error', (e) => errors.push(e));
    await whenComplete(leech.session, 30_000);
    expect(errors).toEqual([]);
  }, 60_000);

  // the session calls storage.assertFilesInPlace() before it emits 'complete'
  it('a file complete from the start (never written) removed mid-download: exit 6 naming it, never "complete"', async () => {
    const { fx, peer } = await slowSwarm([
      { path: ['a.bin'], size: 4 * PIECE }, // whole pieces: complete on its own
      { path: ['b.bin'], size: 3 * 1024 * 1024 },
    ]);
    const out = join(fx.work, 'out');
    await cp(join(fx.seedRoot, 'big', 'a.bin'), join(out, 'big', 'a.bin'));
    const tt = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '--json']);
    await tt.waitForEvent('started', 20_000); // storage is open: a.bin was found there, complete
    await rm(join(out, 'big', 'a.bin'));
    const exit = await tt.waitForExit(60_000);
    expect(exit.code, tt.describe()).toBe(6);
    expectOneErrorLine(tt, /^tt: cannot write ".*[/]out[/]big[/]a\.bin": deleted or moved while downloading/);
    expect(tt.events.some((e) => e.event === 'complete')).toBe(false);
  }, 90_000);
});
