/**
 * Writing a small file the user named (`tt create -o`, `tt download
 * --save-torrent`) whole or not at all: a temporary file beside it, then a
 * rename, so no reader ever sees half of it and a crash leaves no partial
 * file under that name. An existing file is never replaced unless asked, and
 * then only a regular file: a FIFO, a device (/dev/null, /dev/full), a socket,
 * a folder or a symbolic link under that name is refused before anything is
 * created (a rename would put a regular file in place of the device node, or
 * of the link, not write through it). The check is an lstat before the
 * temporary file is made, and again just before the rename; something that
 * swaps the name for a special file between that second check and the rename
 * (a few microseconds) is not caught: Node has no renameat2(RENAME_NOREPLACE /
 * RENAME_EXCHANGE) to close it, and only someone who can write to that folder
 * can do it.
 */
import { constants, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TtError, errnoReason } from '../core/errors.js';
import { sanitizeForTerminal } from './format.js';

export interface WriteWholeOptions {
  /** Replace an existing regular file (`--force`). */
  force?: boolean;
  /** An existing file with exactly these bytes is fine: nothing is written (a re-run of the same command). */
  sameIsFine?: boolean;
  /** What the refusal to replace suggests, e.g. "(--force replaces it)". */
  hint?: string;
}

/** What a non-regular directory entry is, in words. */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw writeError(path, err);
  }
}

/**
 * Refuse (USAGE) when `path` exists and is anything but a regular file; its
 * Stats when it is one, undefined when nothing is there. Callers run it before
 * expensive work (hashing a folder) so the user hears at once; writeWhole
 * checks again itself.
 */
export async function checkWritable(path: string): Promise<Stats | undefined> {
  const st = await lstatOrUndefined(path);
  if (st === undefined) return undefined;
  if (!st.isFile()) {
    throw new TtError('USAGE', `${sanitizeForTerminal(path)} is ${kindOf(st)}, not a regular file: tt replaces only regular files (nothing written)`);
  }
  return st;
}

/** Write `bytes` to `path`; returns false when `sameIsFine` found them there already. */
export async function writeWhole(path: string, bytes: Buffer, opts: WriteWholeOptions = {}): Promise<boolean> {
  const existing = await checkWritable(path);
  if (existing !== undefined && !opts.force) return refuseExisting(path, bytes, opts);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(bytes);
    } finally {
      await fh.close();
    }
    if (!opts.force) {
      // never replace an existing file: claim the name first
      const claim = await open(path, 'wx', 0o644);
      await claim.close();
    } else {
      // what is there now must still be a regular file (or nothing)
      await checkWritable(path);
    }
    await rename(tmp, path);
    return true;
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (err instanceof TtError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return refuseExisting(path, bytes, opts);
    throw writeError(path, err);
  }
}

/** Exit 6 naming the file and why, in words; a missing folder is named as such. */
function writeError(path: string, err: unknown): TtError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === 'ENOENT' ? `folder ${sanitizeForTerminal(dirname(path))} does not exist` : errnoReason(err, 'write failed');
  return new TtError('DISK', `cannot write ${sanitizeForTerminal(path)}: ${reason}`, { cause: err });
}

/** An existing file and no --force: fine when `sameIsFine` and it holds exactly `bytes`, else refused. */
async function refuseExisting(path: string, bytes: Buffer, opts: WriteWholeOptions): Promise<false> {
  if (opts.sameIsFine && (await sameBytes(path, bytes))) return false;
  // it may have become something else since the first look: say what it is now
  await checkWritable(path);
  throw new TtError('USAGE', `${sanitizeForTerminal(path)} already exists${opts.hint ? ` ${opts.hint}` : ''}`);
}

async function sameBytes(path: string, bytes: Buffer): Promise<boolean> {
  try {
    // O_NOFOLLOW | O_NONBLOCK: a link or a FIFO swapped in is not followed or waited on
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size !== bytes.length) return false;
      return (await readFile(fh)).equals(bytes);
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}
