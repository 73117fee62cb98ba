/**
 * Writing a small file the user named (`tt create -o`, `tt download
 * --save-torrent`) whole or not at all: a temporary file beside it, then a
 * rename, so no reader ever sees half of it and a crash leaves no partial
 * file under that name. An existing file is never replaced unless asked.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TtError } from '../core/errors.js';
import { sanitizeForTerminal } from './format.js';

export interface WriteWholeOptions {
  /** Replace an existing file (`--force`). */
  force?: boolean;
  /** An existing file with exactly these bytes is fine: nothing is written (a re-run of the same command). */
  sameIsFine?: boolean;
  /** What the refusal to replace suggests, e.g. "(--force replaces it)". */
  hint?: string;
}

/** Write `bytes` to `path`; returns false when `sameIsFine` found them there already. */
export async function writeWhole(path: string, bytes: Buffer, opts: WriteWholeOptions = {}): Promise<boolean> {
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
    }
    await rename(tmp, path);
    return true;
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (opts.sameIsFine && (await sameBytes(path, bytes))) return false;
      throw new TtError('USAGE', `${sanitizeForTerminal(path)} already exists${opts.hint ? ` ${opts.hint}` : ''}`);
    }
    throw new TtError('DISK', `cannot write ${sanitizeForTerminal(path)}: ${code ?? 'write failed'}`, { cause: err });
  }
}

async function sameBytes(path: string, bytes: Buffer): Promise<boolean> {
  try {
    const fh = await open(path, 'r');
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
