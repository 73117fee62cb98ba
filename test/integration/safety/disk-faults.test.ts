/**
 * Disk faults for the built `tt download` (HARDENING.md "storage and resume"):
 * a full disk (a 2 MiB tmpfs) and a read-only target (tmpfs remounted ro).
 * Expect exit 6 with one clear line, verified pieces kept and hashing, and a
 * later run from a copy of the partial data fetching only the rest.
 * Needs root for mount(8); every mount is unmounted in cleanup.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt } from '../cli/tt-cli.js';
import { piecesOnDisk } from './pieces-on-disk.js';

const mounts: string[] = [];
const workDirs: string[] = [];

// order matters: processes and sessions let go of their files, then unmount, then remove
afterEach(async () => {
  await killAllTt();
  await stopAll();
  for (const dir of mounts.splice(0).reverse()) execFileSync('umount', [dir]);
  for (const dir of workDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A tmpfs of `size` (mount(8) syntax) at a new folder; unmounted in afterEach. */
async function tmpfs(dir: string, size: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`mount -t tmpfs is not permitted here (needs root); this test cannot run: ${(err as Error).message}`);
  }
  mounts.push(dir);
  return dir;
}

const PIECE_LENGTH = 32 * 1024;

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({
    name: 'big',
    files: [
      { path: ['one.bin'], size: 3 * 1024 * 1024 + 11 },
      { path: ['two.bin'], size: 3 * 1024 * 1024 - 11 },
    ],
    pieceLength: PIECE_LENGTH,
  });
  workDirs.push(fx.work);
  return fx;
}

describe('disk full', () => {
  it('exits 6 with one line saying the disk is full; verified pieces on the full disk hash; a roomy restart fetches only the rest', async () => {
    const fx = await fixture(); // 6 MiB into 2 MiB
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const peer = ['--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`];
    const small = await tmpfs(join(fx.work, 'small'), '2m');
    const full = await runTt(['download', fx.torrentPath, '--out', small, ...LOOPBACK, ...peer, '--json'], 30_000);
    expect(full.exit?.code, full.describe()).toBe(6);
    expectOneErrorLine(full, /disk full|no space/i);
    expect(full.badLines).toEqual([]);
    expect(full.events.some((e) => e.event === 'done')).toBe(false);

    const good = await piecesOnDisk(fx.meta, small);
    console.log(`disk full: ${full.stderr.trim()} | ${good.length}/${fx.meta.pieceCount} pieces hash on the 2 MiB tmpfs`);
    // most of the 2 MiB holds verified pieces (64 fit; allow for the partial one and tmpfs overhead)
    expect(good.length).toBeGreaterThan(40);
    expect(good.length).toBeLessThan(fx.meta.pieceCount);
    // every piece it announced as had was on disk: the last progress never claims more than hashes
    const lastProgress = full.events.filter((e) => e.event === 'progress').pop();
    if (lastProgress) expect(lastProgress.have as number).toBeLessThanOrEqual(good.length);

    // a copy of the partial data in a roomy folder: checked finds exactly those, fetches only the rest
    const roomy = join(fx.work, 'roomy');
    await cp(small, roomy, { recursive: true });
    const resumed = await runTt(['download', fx.torrentPath, '--out', roomy, ...LOOPBACK, ...peer, '--json'], 30_000);
    expect(resumed.exit?.code, resumed.describe()).toBe(0);
    expect(resumed.events.find((e) => e.event === 'checked')?.have).toBe(good.length);
    const done = resumed.events.find((e) => e.event === 'done')!;
    expect(done.downloaded).toBeLessThanOrEqual((fx.meta.pieceCount - good.length) * PIECE_LENGTH);
    await expectSameData(fx, roomy);
  });
});

describe('read-only target', () => {
  it('--out on a read-only file system exits 6 with one clear line', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const ro = await tmpfs(join(fx.work, 'ro'), '4m');
    execFileSync('mount', ['-o', 'remount,ro', ro]);
    for (const out of [ro, join(ro, 'sub', 'folder')]) {
      const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`, '--quiet'], 30_000);
      expect(p.exit?.code, p.describe()).toBe(6);
      expectOneErrorLine(p, /read-only/i);
    }
    expect(await readdir(ro)).toEqual([]);
  });

  it('a complete copy on a read-only file system is still seeded (serving needs no write access)', async () => {
    const fx = await fixture();
    const ro = await tmpfs(join(fx.work, 'ro'), '8m');
    await cp(fx.seedRoot, ro, { recursive: true });
    execFileSync('mount', ['-o', 'remount,ro', ro]);
    const seed = await startSession({ meta: fx.meta, root: ro, mode: 'seed' });
    expect(seed.session.have.complete).toBe(true);
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`, '--quiet'], 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    await expectSameData(fx, out);
  });
});
