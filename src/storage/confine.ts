/**
 * Checks, after each open, that a file handle really is the file at its torrent
 * path (BEP 3 `path` list) under realpath(root), reached without symlinks:
 * O_NOFOLLOW guards only the last component, so a folder swapped for a symlink
 * after resolveInside() would otherwise send reads and writes outside the root.
 * Folders are opened the same way (openFolderInside), for what is done by name
 * inside one (storage.ts removing its leftover temporaries).
 */
import { constants } from 'node:fs';
import { lstat, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DiskError } from '../core/errors.js';
import { toDiskError } from './disk-error.js';

/** True on Linux, where /proc/self/fd/<fd> names an open file's current path. */
export const HAS_PROC_FD = process.platform === 'linux';

/** realpath(root), as DiskError on failure; `root` itself may be a symlink. */
export async function realRoot(root: string): Promise<string> {
  try {
    return await realpath(root);
  } catch (err) {
    throw toDiskError('open', root, err);
  }
}

/**
 * Throws DiskError ("escapes the download folder") unless `fh` is the file at
 * join(rootReal, ...components) with no symlink on the way. `rootReal` must
 * come from realRoot(). With `useProc` asks /proc/self/fd; otherwise (or when
 * /proc is not there) walks the path with lstat and compares dev/ino with fstat.
 */
export async function assertOpenedInside(
  fh: FileHandle,
  rootReal: string,
  components: readonly string[],
  useProc: boolean = HAS_PROC_FD,
): Promise<void> {
  const expected = path.join(rootReal, ...components);
  if (useProc) {
    let actual: string | undefined;
    try {
      actual = await readlink(`/proc/self/fd/${fh.fd}`);
    } catch {
      actual = undefined; // no /proc: fall back to the walk
    }
    if (actual !== undefined) {
      if (actual !== expected) throw refusal(expected, rootReal, `it opened ${JSON.stringify(actual)}`);
      return;
    }
  }
  await walkAndCompare(fh, rootReal, components, expected);
}

/**
 * Opens the folder join(rootReal, ...components) (no symlink as its last
 * component: O_NOFOLLOW) and checks it is that folder, reached without
 * symlinks (assertOpenedInside; no components: rootReal itself). `path`
 * names it for calls that take a path: where /proc is there, through the
 * handle (/proc/self/fd/N), so an entry `join(path, name)` is looked up in
 * this very folder even if a folder on the way is renamed or swapped for a
 * symlink meanwhile; elsewhere its path, checked once. Rejects with the
 * open's errno (ENOENT: no such folder) or a DiskError; the caller closes
 * `fh`.
 */
export async function openFolderInside(rootReal: string, components: readonly string[]): Promise<{ fh: FileHandle; path: string }> {
  const folder = path.join(rootReal, ...components);
  const fh = await open(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await assertOpenedInside(fh, rootReal, components);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
  const viaFd = `/proc/self/fd/${fh.fd}`;
  const pinned = HAS_PROC_FD && (await readlink(viaFd).then(() => true, () => false)); // /proc may not be mounted
  return { fh, path: pinned ? viaFd : folder };
}

/** Portable check: every component under rootReal is a real folder/file, and the last is `fh`'s inode (rootReal's, with none). */
async function walkAndCompare(fh: FileHandle, rootReal: string, components: readonly string[], expected: string): Promise<void> {
  let current = rootReal;
  let last = components.length === 0 ? await lstat(rootReal, { bigint: true }).catch(() => undefined) : undefined;
  for (let i = 0; i < components.length; i++) {
    current = path.join(current, components[i]!);
    try {
      last = await lstat(current, { bigint: true });
    } catch (err) {
      throw refusal(expected, rootReal, `${JSON.stringify(current)} cannot be checked: ${toDiskError('open', current, err).message}`);
    }
    if (last.isSymbolicLink()) throw refusal(expected, rootReal, `${JSON.stringify(current)} is a symbolic link`);
    if (i < components.length - 1 && !last.isDirectory()) throw refusal(expected, rootReal, `${JSON.stringify(current)} is not a folder`);
  }
  const opened = await fh.stat({ bigint: true });
  if (!last || last.dev !== opened.dev || last.ino !== opened.ino) {
    throw refusal(expected, rootReal, 'the file opened is not the one at that path');
  }
}

function refusal(file: string, rootReal: string, detail: string): DiskError {
  return new DiskError(`refusing ${JSON.stringify(file)}: escapes the download folder ${JSON.stringify(rootReal)} (${detail})`);
}
