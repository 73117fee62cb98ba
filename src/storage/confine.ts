/**
 * Checks, after each open, that a file handle really is the file at its torrent
 * path (BEP 3 `path` list) under realpath(root), reached without symlinks:
 * O_NOFOLLOW guards only the last component, so a folder swapped for a symlink
 * after resolveInside() would otherwise send reads and writes outside the root.
 */
import { lstat, readlink, realpath, type FileHandle } from 'node:fs/promises';
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

/** Portable check: every component under rootReal is a real folder/file, and the last is `fh`'s inode. */
async function walkAndCompare(fh: FileHandle, rootReal: string, components: readonly string[], expected: string): Promise<void> {
  let current = rootReal;
  let last;
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
