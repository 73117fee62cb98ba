/**
 * The folder a command reads or writes a torrent's data in (`--dir`,
 * `--out`), checked before anything else happens, so the error says what is
 * wrong with the path instead of what a later step tripped on:
 * - `tt seed` / `tt verify`: the torrent's top-level path (`DIR/<name>`: the
 *   file of a single-file torrent, the folder of a multi-file one) missing
 *   altogether is "no data" (exit 3, INPUT), not "N of N pieces missing"
 *   (exit 7, which stays for data that is there but incomplete or wrong);
 *   DIR being a file is said as such.
 * - `tt download --out FILE`: "is not a folder", not mkdir's EEXIST.
 * Pure path logic over lstat/stat; no BEP.
 */
import { lstat, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DiskError, TtError } from '../core/errors.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { sanitizeForTerminal } from './format.js';

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The nearest existing path at or above `path` when it is not a folder (a
 * file where a folder is needed), else undefined (all folders, or nothing
 * there yet). Symbolic links to folders count as folders, as for mkdir -p.
 */
export async function fileInTheWay(path: string): Promise<string | undefined> {
  for (let p = path; ; p = dirname(p)) {
    try {
      return (await stat(p)).isDirectory() ? undefined : p;
    } catch (err) {
      const code = errnoOf(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return undefined;
    }
    if (dirname(p) === p) return undefined;
  }
}

/**
 * `tt seed` and `tt verify`: throws INPUT (exit 3) when the torrent's data
 * is not under `root` at all: `no data: ROOT/NAME does not exist`, or
 * `no data: ROOT is not a folder`. Anything present (even empty or of the
 * wrong kind) is left to the check, which says what is missing or wrong.
 */
export async function requireData(root: string, meta: Metainfo): Promise<void> {
  const top = join(root, meta.files[0]?.path[0] ?? meta.name); // the name on disk (parse-torrent.ts)
  try {
    await lstat(top);
    return;
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return; // EACCES and the like: the check reports them
  }
  const file = await fileInTheWay(root);
  const why = file !== undefined ? `${file} is not a folder` : `${top} does not exist`;
  throw new TtError('INPUT', `no data: ${sanitizeForTerminal(why)}`);
}

/** `tt download --out`: a file where the folder should be is a disk error that says so. */
export async function notAFolderError(root: string, cause: unknown): Promise<DiskError | undefined> {
  const code = errnoOf(cause);
  if (code !== 'EEXIST' && code !== 'ENOTDIR') return undefined;
  const file = await fileInTheWay(root);
  if (file === undefined) return undefined;
  const where = file === root ? '' : ` (${sanitizeForTerminal(root)} would be inside it)`;
  return new DiskError(`cannot download into ${sanitizeForTerminal(file)}: it is not a folder${where}`, cause);
}
