/**
 * What a black-box tester found in storage, each through the built `tt
 * download` against an in-process tt seeder on loopback:
 * - a 3,000-file torrent of ~125-byte files (16 KiB pieces, each spanning
 *   ~130 files) under a real low descriptor limit (`prlimit --nofile`, the
 *   limit Node sees at start): it used to fail with EMFILE (exit 6) at
 *   `ulimit -n 1024` on every run; now it completes, and a rerun checks the
 *   3,000 files under the same limit;
 * - a complete download whose files are read-only, run again by a real
 *   non-root user (setpriv --reuid=65534: the tests run as root, which any
 *   file mode lets write): it used to exit 6 `cannot create ".../blob.bin":
 *   not writable`; now it exits 0, and a file that must be written but is
 *   read-only gives `cannot write ".../x": not writable`;
 * - a hard link in the output folder to a file outside it: the download used
 *   to overwrite the outside file; now that file keeps its bytes.
 */
import { execFileSync } from 'node:child_process';
import { chmod, cp, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectSameData, makeFixture, startSession, stopAll, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt } from '../cli/tt-cli.js';
import { runWrapped } from './wrapped-tt.js';

const workDirs: string[] = [];

afterEach(async () => {
  await killAllTt();
  await stopAll();
  for (const dir of workDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function fixture(opts: Parameters<typeof makeFixture>[0]): Promise<Fixture> {
  const fx = await makeFixture(opts);
  workDirs.push(fx.work);
  return fx;
}

/** Where to reach a seeder of `fx` running in this process. */
async function seeder(fx: Fixture): Promise<string[]> {
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
  return ['--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`];
}

describe('a low descriptor limit (prlimit --nofile)', () => {
  for (const limit of [1024, 96]) {
    it(`3,000 small files, each piece spanning ~130 of them, at a limit of ${limit}: completes, and a rerun checks them all`, async () => {
      const fx = await fixture({
        name: 'm',
        files: Array.from({ length: 3000 }, (_, i) => ({ path: [`f${String(i).padStart(5, '0')}`], size: 100 + (i % 50) })),
        pieceLength: 16 * 1024,
      });
      const peer = await seeder(fx);
      const out = join(fx.work, 'o');
      const wrapper = ['prlimit', `--nofile=${limit}:${limit}`, '--'];
      const first = await runWrapped(wrapper, ['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '-q'], 90_000);
      expect(first.proc.exitStatusNow?.code, first.describe()).toBe(0);
      expect(first.errorLines).toEqual([]);
      await expectSameData(fx, out);
      const again = await runWrapped(wrapper, ['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '--json'], 90_000);
      expect(again.proc.exitStatusNow?.code, again.describe()).toBe(0);
      expect(again.events.find((e) => e.event === 'checked')?.have).toBe(fx.meta.pieceCount);
    }, 200_000);
  }
});

/** Runs `args` as the unprivileged user 65534 (nobody). */
const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

describe('read-only files, as a real non-root user (setpriv --reuid=65534)', () => {
  /** The fixture's folder opened to user 65534: its work folder traversable, `out` (a copy of `from`, when given) owned by it. */
  async function forNobody(fx: Fixture, out: string, from?: string): Promise<void> {
    await chmod(fx.work, 0o755);
    if (from) await cp(from, out, { recursive: true });
    else await mkdir(out);
    execFileSync('chown', ['-R', '65534:65534', out]);
  }

  it('a complete download whose file is read-only (chmod 444) is re-run: exit 0, nothing written', async () => {
    const fx = await fixture({ name: 'blob.bin', files: [{ path: ['blob.bin'], size: 300_000 }], single: true });
    const peer = await seeder(fx);
    const out = join(fx.work, 'w');
    await forNobody(fx, out, fx.seedRoot);
    const blob = join(out, 'blob.bin');
    await chmod(blob, 0o444);
    const before = await stat(blob);
    const run = await runWrapped(AS_NOBODY, ['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '--json'], 30_000);
    expect(run.proc.exitStatusNow?.code, run.describe()).toBe(0);
    expect(run.events.find((e) => e.event === 'checked')?.have).toBe(fx.meta.pieceCount);
    expect((await stat(blob)).mtimeMs).toBe(before.mtimeMs);
    expect((await stat(blob)).mode & 0o777).toBe(0o444);
  });

  it('partly complete: read-only complete files stay as they are and the rest is downloaded; a read-only file that needs bytes is "not writable", named', async () => {
    const fx = await fixture({
      name: 'two',
      files: [
        { path: ['done.bin'], size: 4 * 32_768 }, // whole pieces: complete on its own
        { path: ['todo.bin'], size: 100_001 },
      ],
    });
    const peer = await seeder(fx);
    const out = join(fx.work, 'w');
    await forNobody(fx, out);
    await mkdir(join(out, 'two'));
    await writeFile(join(out, 'two', 'done.bin'), fx.files[0]!.data);
    execFileSync('chown', ['-R', '65534:65534', out]);
    await chmod(join(out, 'two', 'done.bin'), 0o444);
    const run = await runWrapped(AS_NOBODY, ['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '-q'], 30_000);
    expect(run.proc.exitStatusNow?.code, run.describe()).toBe(0);
    await expectSameData(fx, out);

    // todo.bin made read-only while it still lacks its last piece: writing it is refused, by name
    const todo = join(out, 'two', 'todo.bin');
    await writeFile(todo, fx.files[1]!.data.subarray(0, 50_000));
    execFileSync('chown', ['65534:65534', todo]);
    await chmod(todo, 0o444);
    const denied = await runWrapped(AS_NOBODY, ['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '-q'], 30_000);
    expect(denied.proc.exitStatusNow?.code, denied.describe()).toBe(6);
    // what was verified stays, and the line says so
    expect(denied.errorLines).toEqual([expect.stringMatching(new RegExp(`^tt: cannot write ${escapeRe(JSON.stringify(todo))}: not writable \\(permission denied\\) \\(EACCES\\); \\d+ of ${fx.meta.pieceCount} pieces verified and kept$`))]);
  });
});

describe('a hard link in the output folder', () => {
  it('to a file outside it (ln victim o/blob.bin): the download completes, the outside file keeps its bytes', async () => {
    const fx = await fixture({ name: 'blob.bin', files: [{ path: ['blob.bin'], size: 300_000 }], single: true });
    const peer = await seeder(fx);
    const out = join(fx.work, 'o');
    await mkdir(out);
    const victim = join(fx.work, 'victim');
    const precious = Buffer.alloc(300_000, 0x42);
    await writeFile(victim, precious);
    await link(victim, join(out, 'blob.bin'));
    const run = await runWrapped(['env'], ['download', fx.torrentPath, '--out', out, ...LOOPBACK, ...peer, '-q'], 30_000);
    expect(run.proc.exitStatusNow?.code, run.describe()).toBe(0);
    expect((await readFile(victim)).equals(precious)).toBe(true);
    expect((await stat(victim)).nlink).toBe(1);
    await expectSameData(fx, out);
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
