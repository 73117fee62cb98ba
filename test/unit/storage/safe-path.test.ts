import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import { resolveInside } from '../../../src/storage/safe-path.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { makeTorrent } from './fixture.js';

/** Every path under `dir`, recursively (symlinks not followed). */
async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => path.join(e.parentPath ?? e.path, e.name)).sort();
}

let parent: string;
let root: string;
let outside: string;

beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'tt-safe-'));
  root = path.join(parent, 'root');
  outside = path.join(parent, 'outside');
  await mkdir(root);
  await mkdir(outside);
});

afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

describe('resolveInside', () => {
  it('returns the absolute path under root for a fresh path', async () => {
    await expect(resolveInside(root, ['T', 'a', 'b.bin'])).resolves.toBe(path.join(root, 'T', 'a', 'b.bin'));
  });

  it.each([[['..', 'x']], [['T', '..', '..', 'x']], [['.']], [['']], [['a/b']], [['a\\b']], [['x\0y']], [['/etc/passwd']], [['C:x']], [[]]])(
    'refuses the components %j',
    async (components) => {
      await expect(resolveInside(root, components)).rejects.toBeInstanceOf(DiskError);
    },
  );

  it('refuses a pre-existing symlinked folder pointing out of root', async () => {
    await symlink(outside, path.join(root, 'T'));
    await expect(resolveInside(root, ['T', 'f.bin'])).rejects.toThrow(/symbolic link/);
  });

  it('refuses a pre-existing symlinked file, even one pointing inside root', async () => {
    await mkdir(path.join(root, 'T'));
    await writeFile(path.join(root, 'real'), 'x');
    await symlink(path.join(root, 'real'), path.join(root, 'T', 'f.bin'));
    await expect(resolveInside(root, ['T', 'f.bin'])).rejects.toThrow(/symbolic link/);
  });

  it('refuses a file where a folder is needed, and a folder where a file is expected', async () => {
    await writeFile(path.join(root, 'T'), 'x');
    await expect(resolveInside(root, ['T', 'f.bin'])).rejects.toThrow(/not a folder/);
    await mkdir(path.join(root, 'D', 'f.bin'), { recursive: true });
    await expect(resolveInside(root, ['D', 'f.bin'])).rejects.toThrow(/not a regular file/);
  });

  it('allows the root itself to be a symlink', async () => {
    const link = path.join(parent, 'link');
    await symlink(root, link);
    await expect(resolveInside(link, ['T', 'f.bin'])).resolves.toBe(path.join(link, 'T', 'f.bin'));
  });
});

describe('storage never writes outside root', () => {
  it('refuses a torrent folder that is a symlink out of root, and nothing appears outside', async () => {
    await symlink(outside, path.join(root, 'T'));
    const before = await snapshot(parent);
    const { meta } = makeTorrent([100, 200], 64);
    await expect(TorrentStorage.open(root, meta, { mode: 'readwrite' })).rejects.toBeInstanceOf(DiskError);
    expect(await snapshot(parent)).toEqual(before);
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses a symlinked data file when seeding (read mode), so it cannot leak other files', async () => {
    await mkdir(path.join(root, 'T'));
    await writeFile(path.join(outside, 'secret'), 'secret');
    await symlink(path.join(outside, 'secret'), path.join(root, 'T', 'f0.bin'));
    const { meta } = makeTorrent([6], 16);
    await expect(TorrentStorage.open(root, meta, { mode: 'read' })).rejects.toThrow(/symbolic link/);
  });
});
