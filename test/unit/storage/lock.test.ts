/** storage/lock.ts: one download of a torrent into a folder at a time. */
import { readFile, readdir, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireDownloadLock, isLockFileName, lockFileName, pidAlive } from '../../../src/storage/lock.js';
import { spawn } from 'node:child_process';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { makeTorrent, withTempDir } from './fixture.js';
import { ensureBuilt } from '../../helpers/build.js';
import { fileURLToPath } from 'node:url';

describe('download lock', () => {
  it('holds this pid while taken, refuses a second taker while that pid lives, and is gone once released', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const release = await acquireDownloadLock(dir, meta);
      const file = path.join(dir, lockFileName(meta));
      expect(await readFile(file, 'utf8')).toBe(`${process.pid}\n`);
      // another process holding it: the holder is named
      await writeFile(file, '4242\n');
      await expect(acquireDownloadLock(dir, meta, (pid) => pid === 4242)).rejects.toMatchObject({
        code: 'USAGE',
        message: `another tt (pid 4242) is downloading into ${path.join(dir, meta.name)}; let it finish or stop it first`,
      });
      // that process is gone (killed, crashed): taken over
      const again = await acquireDownloadLock(dir, meta, () => false);
      expect(await readFile(file, 'utf8')).toBe(`${process.pid}\n`);
      await again();
      await release(); // already gone: no error
      expect(await readdir(dir)).toEqual([]);
    }));

  it('a lock file of garbage, or one left by this very process, is taken over; torrents of other names have their own', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const o = makeTorrent([2000], 16_384).meta;
      const other = { ...o, name: 'U', files: o.files.map((f) => ({ ...f, path: ['U', ...f.path.slice(1)] })), infoHash: Buffer.alloc(20, 1), infoHashHex: '01'.repeat(20) };
      await writeFile(path.join(dir, lockFileName(meta)), 'not a pid');
      const a = await acquireDownloadLock(dir, meta, () => true);
      const b = await acquireDownloadLock(dir, meta, () => true); // our own pid: a session never closed
      const c = await acquireDownloadLock(dir, other, () => true);
      expect((await readdir(dir)).sort()).toEqual([lockFileName(meta), lockFileName(other)].sort());
      await Promise.all([a(), b(), c()]);
    }));

  it('another torrent of the same name (it writes the same path: a new build while the old one downloads) is refused too', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const newer = { ...makeTorrent([5000, 7], 16_384).meta, infoHash: Buffer.alloc(20, 2), infoHashHex: '02'.repeat(20) };
      expect(newer.name).toBe(meta.name);
      await writeFile(path.join(dir, lockFileName(meta)), '4242\n');
      await expect(acquireDownloadLock(dir, newer, (pid) => pid === 4242)).rejects.toThrow(`another tt (pid 4242) is downloading into ${path.join(dir, 'T')}`);
    }));

  it('a pid reused by a node process that started after the lock was written (after a reboot) does not hold it', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const file = path.join(dir, lockFileName(meta));
      const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
      try {
        await new Promise((r) => other.once('spawn', r));
        await new Promise((r) => setTimeout(r, 300)); // it has exec'd node: its command line says so
        // written now, after that node started: it may be the holder
        await writeFile(file, `${other.pid}\n`);
        await expect(acquireDownloadLock(dir, meta)).rejects.toThrow(`pid ${other.pid}`);
        // written two days ago, before it started: a tt that is gone, its pid since reused
        const old = new Date(Date.now() - 2 * 86_400_000);
        await utimes(file, old, old);
        const release = await acquireDownloadLock(dir, meta);
        expect(await readFile(file, 'utf8')).toBe(`${process.pid}\n`);
        await release();
      } finally {
        other.kill();
      }
    }));

  it('a torrent named like a lock is never written', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000, 2000], 16_384);
      expect(isLockFileName(lockFileName(meta))).toBe(true);
      const named = makeTorrent([10], 16_384).meta;
      const crafted = { ...named, files: [{ ...named.files[0]!, path: [lockFileName(meta)] }] };
      await expect(TorrentStorage.open(dir, crafted, { mode: 'readwrite' })).rejects.toThrow(/tt keeps a download's lock under that name/);
    }));

  it('a live pid holds it only when it is a node or tt process: a pid reused by another program (after a reboot) does not', async () => {
    expect(pidAlive(process.pid)).toBe(true);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => sleeper.once('spawn', r));
      expect(pidAlive(sleeper.pid!)).toBe(process.platform !== 'linux');
    } finally {
      sleeper.kill();
    }
    expect(pidAlive(2 ** 22 + 12345)).toBe(false); // above Linux's pid_max: no such process
  });

  it('never leaves its own temporary file behind, taken or refused', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const release = await acquireDownloadLock(dir, meta);
      await writeFile(path.join(dir, lockFileName(meta)), '4242\n');
      await expect(acquireDownloadLock(dir, meta, () => true)).rejects.toThrow(/pid 4242/);
      expect(await readdir(dir)).toEqual([lockFileName(meta)]);
      await release();
    }));

  it('of runs starting together over a dead run\'s lock, exactly one takes it (each, acting on what it read, removed the other\'s)', async () => {
    ensureBuilt();
    const lockJs = fileURLToPath(new URL('../../../dist/storage/lock.js', import.meta.url));
    await withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const file = path.join(dir, lockFileName(meta));
      // each child waits for the same instant, takes the lock, says so and holds it while the others try
      const child = `
        const { acquireDownloadLock } = await import(${JSON.stringify(lockJs)});
        const [dir, at] = process.argv.slice(1);
        while (Date.now() < Number(at)) {}
        const said = await acquireDownloadLock(dir, ${JSON.stringify({ name: meta.name, files: [{ path: meta.files[0]!.path }] })}).then(() => 'took', (e) => e.code === 'USAGE' ? 'refused' : String(e));
        process.stdout.write(said);
        setTimeout(() => process.exit(0), 900);`;
      for (let round = 0; round < 6; round++) {
        await writeFile(file, `${2 ** 22 + 12345}\n`); // no such pid: a run that was killed
        const at = Date.now() + 400;
        const runs = Array.from({ length: 4 }, () => {
          const p = spawn(process.execPath, ['--input-type=module', '-e', child, dir, String(at)], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          return new Promise<string>((resolve) => p.once('close', () => resolve(out)));
        });
        const said = await Promise.all(runs);
        expect(said.sort(), `round ${round}`).toEqual(['refused', 'refused', 'refused', 'took']);
        expect((await readdir(dir)).sort(), 'no file of theirs left but the lock').toEqual([lockFileName(meta)]);
      }
    });
  }, 60_000);

  it('a takeover guard left by a run killed mid-takeover is old and removed; a fresh one is waited on, not removed', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const file = path.join(dir, lockFileName(meta));
      await writeFile(file, '4242\n');
      const guard = `${file}.4242.takeover`;
      await writeFile(guard, '');
      const old = new Date(Date.now() - 60_000);
      await utimes(guard, old, old);
      const release = await acquireDownloadLock(dir, meta, () => false);
      expect(await readFile(file, 'utf8')).toBe(`${process.pid}\n`);
      expect(await readdir(dir)).toEqual([lockFileName(meta)]);
      await release();
      // a fresh guard: another run is taking the dead lock over right now; it finishes within 300 ms
      await writeFile(file, '4242\n');
      await writeFile(guard, '');
      const started = Date.now();
      setTimeout(() => void unlink(file).then(() => unlink(guard)), 300);
      const second = await acquireDownloadLock(dir, meta, () => false);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(await readFile(file, 'utf8')).toBe(`${process.pid}\n`);
      await second();
    }));
});

