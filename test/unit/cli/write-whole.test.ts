/**
 * writeWhole (`tt create -o`, `tt download --save-torrent`): an existing name
 * is replaced only when it is a regular file and --force was given; a FIFO, a
 * symbolic link (dangling or not) or a folder under that name is refused with
 * one USAGE error that says what it is, before any temporary file is made, so
 * the folder is exactly as it was.
 */
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { checkWritable, writeWhole } from '../../../src/cli/write-whole.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function workDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tt-write-whole-'));
  dirs.push(d);
  return d;
}

async function usageError(p: Promise<unknown>): Promise<TtError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TtError);
  expect((err as TtError).code).toBe('USAGE');
  return err as TtError;
}

const BYTES = Buffer.from('d4:infod4:name1:xee');

describe('writeWhole', () => {
  it('writes a new file, refuses an existing one without force, replaces it with force', async () => {
    const dir = await workDir();
    const path = join(dir, 'x.torrent');
    expect(await writeWhole(path, BYTES)).toBe(true);
    expect(await readFile(path)).toEqual(BYTES);
    expect((await usageError(writeWhole(path, Buffer.from('other')))).message).toMatch(/already exists/);
    expect(await writeWhole(path, BYTES, { sameIsFine: true })).toBe(false);
    expect(await writeWhole(path, Buffer.from('other'), { force: true })).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('other');
    expect(await readdir(dir)).toEqual(['x.torrent']);
  });

  for (const force of [false, true]) {
    it(`a FIFO is refused${force ? ' even with force' : ''}, and stays a FIFO; nothing is created`, async () => {
      const dir = await workDir();
      const fifo = join(dir, 'pipe');
      execFileSync('mkfifo', [fifo]);
      const err = await usageError(writeWhole(fifo, BYTES, { force, sameIsFine: true }));
      expect(err.message).toMatch(/pipe is a FIFO \(named pipe\), not a regular file/);
      expect((await lstat(fifo)).isFIFO()).toBe(true);
      expect(await readdir(dir)).toEqual(['pipe']);
    });

    it(`a symbolic link is refused${force ? ' even with force' : ''}: neither the link nor its target changes`, async () => {
      const dir = await workDir();
      const target = join(dir, 'target.torrent');
      await writeFile(target, 'precious');
      const link = join(dir, 'link.torrent');
      await symlink(target, link);
      const dangling = join(dir, 'dangling.torrent');
      await symlink(join(dir, 'nowhere'), dangling);
      for (const path of [link, dangling]) {
        expect((await usageError(writeWhole(path, BYTES, { force }))).message).toMatch(/is a symbolic link, not a regular file/);
        expect((await lstat(path)).isSymbolicLink()).toBe(true);
      }
      expect(await readlink(link)).toBe(target);
      expect(await readFile(target, 'utf8')).toBe('precious');
      expect((await readdir(dir)).sort()).toEqual(['dangling.torrent', 'link.torrent', 'target.torrent']);
    });

    it(`a folder is refused${force ? ' even with force' : ''}, its content kept`, async () => {
      const dir = await workDir();
      const folder = join(dir, 'out.torrent');
      await mkdir(folder);
      await writeFile(join(folder, 'keep'), 'k');
      expect((await usageError(writeWhole(folder, BYTES, { force }))).message).toMatch(/is a folder, not a regular file/);
      expect(await readdir(folder)).toEqual(['keep']);
      expect(await readdir(dir)).toEqual(['out.torrent']);
    });
  }

  it('checkWritable: /dev/null is refused as a character device (only looked at, never opened)', async () => {
    expect((await usageError(checkWritable('/dev/null'))).message).toMatch(/^\/dev\/null is a character device, not a regular file/);
  });

  it('checkWritable: nothing there is fine, a regular file gives its stats', async () => {
    const dir = await workDir();
    expect(await checkWritable(join(dir, 'none'))).toBeUndefined();
    await writeFile(join(dir, 'f'), 'x');
    expect((await checkWritable(join(dir, 'f')))?.size).toBe(1);
  });
});
