import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import { assertOpenedInside, HAS_PROC_FD, openFolderInside, realRoot } from '../../../src/storage/confine.js';

let parent: string;
let root: string;
let outside: string;
const handles: FileHandle[] = [];

beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'tt-confine-'));
  root = path.join(parent, 'root');
  outside = path.join(parent, 'outside');
  await mkdir(path.join(root, 'T', 'sub'), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(root, 'T', 'sub', 'f.bin'), 'inside');
  await writeFile(path.join(outside, 'f.bin'), 'outside');
});

afterEach(async () => {
  for (const fh of handles.splice(0)) await fh.close().catch(() => undefined);
  await rm(parent, { recursive: true, force: true });
});

async function openAt(file: string): Promise<FileHandle> {
  const fh = await open(file, 'r');
  handles.push(fh);
  return fh;
}

const COMPONENTS = ['T', 'sub', 'f.bin'];

describe('assertOpenedInside', () => {
  it('knows whether /proc/self/fd is there (Linux)', () => {
    expect(HAS_PROC_FD).toBe(process.platform === 'linux');
  });

  for (const useProc of [true, false]) {
    const how = useProc ? '/proc/self/fd' : 'lstat walk + dev/ino';
    it(`accepts the file at its path (${how}), also when root itself is a symlink`, async () => {
      const fh = await openAt(path.join(root, ...COMPONENTS));
      await expect(assertOpenedInside(fh, await realRoot(root), COMPONENTS, useProc)).resolves.toBeUndefined();
      const link = path.join(parent, 'link');
      await symlink(root, link);
      const viaLink = await openAt(path.join(link, ...COMPONENTS));
      await expect(assertOpenedInside(viaLink, await realRoot(link), COMPONENTS, useProc)).resolves.toBeUndefined();
    });

    it(`refuses a file reached through a folder swapped for a symlink to outside (${how})`, async () => {
      await rename(path.join(root, 'T', 'sub'), path.join(root, 'T', 'sub-moved'));
      await symlink(outside, path.join(root, 'T', 'sub'));
      const fh = await openAt(path.join(root, ...COMPONENTS)); // what a reopen by path does
      const err = await assertOpenedInside(fh, await realRoot(root), COMPONENTS, useProc).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskError);
      expect((err as DiskError).message).toMatch(/escapes the download folder/);
      expect((err as DiskError).message).toContain(path.join(root, ...COMPONENTS));
    });

    it(`refuses a symlinked folder even when it points inside root (${how})`, async () => {
      await rename(path.join(root, 'T', 'sub'), path.join(root, 'elsewhere'));
      await symlink(path.join(root, 'elsewhere'), path.join(root, 'T', 'sub'));
      const fh = await openAt(path.join(root, ...COMPONENTS));
      await expect(assertOpenedInside(fh, await realRoot(root), COMPONENTS, useProc)).rejects.toThrow(/escapes the download folder/);
    });

    it(`takes root itself when there are no components (${how})`, async () => {
      const fh = await openAt(root);
      await expect(assertOpenedInside(fh, await realRoot(root), [], useProc)).resolves.toBeUndefined();
      const other = await openAt(outside);
      await expect(assertOpenedInside(other, await realRoot(root), [], useProc)).rejects.toThrow(/escapes the download folder/);
    });

    it(`refuses a handle whose file was replaced at that path after opening (${how})`, async () => {
      const fh = await openAt(path.join(root, ...COMPONENTS));
      await rename(path.join(root, ...COMPONENTS), path.join(root, 'T', 'old.bin'));
      await writeFile(path.join(root, ...COMPONENTS), 'new');
      await expect(assertOpenedInside(fh, await realRoot(root), COMPONENTS, useProc)).rejects.toThrow(/escapes the download folder/);
    });
  }

  it('realRoot names a missing root in a DiskError', async () => {
    await expect(realRoot(path.join(parent, 'nope'))).rejects.toThrow(/cannot open ".*nope": missing \(ENOENT\)/);
  });
});

describe('openFolderInside', () => {
  async function opened(components: readonly string[]): Promise<{ fh: FileHandle; path: string }> {
    const folder = await openFolderInside(await realRoot(root), components);
    handles.push(folder.fh);
    return folder;
  }

  it('opens a folder under root (root itself with no components) and names it', async () => {
    expect(await readdir((await opened(['T', 'sub'])).path)).toEqual(['f.bin']);
    expect((await readdir((await opened([])).path)).sort()).toEqual(['T']);
  });

  it('refuses a folder that is a symlink, or reached through one, even pointing inside root', async () => {
    await symlink(outside, path.join(root, 'T', 'out'));
    await expect(openFolderInside(await realRoot(root), ['T', 'out'])).rejects.toMatchObject({ code: expect.stringMatching(/^(ELOOP|ENOTDIR)$/) });
    await symlink(path.join(root, 'T'), path.join(root, 'T2'));
    await expect(openFolderInside(await realRoot(root), ['T2', 'sub'])).rejects.toThrow(/escapes the download folder/);
    await expect(openFolderInside(await realRoot(root), ['T', 'sub', 'f.bin'])).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(openFolderInside(await realRoot(root), ['T', 'nope'])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.runIf(HAS_PROC_FD)('its path keeps naming that folder after a folder on the way is swapped for a symlink to outside', async () => {
    const folder = await opened(['T', 'sub']);
    await rename(path.join(root, 'T'), path.join(root, 'T-moved'));
    await mkdir(path.join(root, 'T'));
    await symlink(outside, path.join(root, 'T', 'sub'));
    expect(await readFile(path.join(folder.path, 'f.bin'), 'utf8')).toBe('inside');
    await rm(path.join(folder.path, 'f.bin'));
    expect(await readFile(path.join(outside, 'f.bin'), 'utf8')).toBe('outside');
    expect(await readdir(path.join(root, 'T-moved', 'sub'))).toEqual([]);
  });
});
