/**
 * Creates a folder and its parents (`mkdir -p`) so that failures carry the
 * real errno: Node 20's recursive mkdir reports ENOENT on a read-only file
 * system, so on ENOENT the path is retried one component at a time, which
 * surfaces EROFS/EACCES for toDiskError ("not writable"). No BEP.
 */
import { mkdir as fsMkdir, rmdir, stat as fsStat } from 'node:fs/promises';
import path from 'node:path';

/** The fs calls mkdirp makes; replaceable so tests can inject errors. */
export interface MkdirFs {
  mkdir(dir: string, opts?: { recursive: boolean }): Promise<unknown>;
  stat(p: string): Promise<{ isDirectory(): boolean }>;
}

const REAL_FS: MkdirFs = { mkdir: fsMkdir, stat: fsStat };

/**
 * Create `dir` and any missing parents. Rejects with the errno of the first
 * component that cannot be created (EROFS, EACCES, ENOTDIR, ...), never with
 * a misleading ENOENT when the cause is something else. Resolves to the
 * first folder it created (every folder from there down to `dir` is new), or
 * undefined when `dir` was there already.
 */
export async function mkdirp(dir: string, fs: MkdirFs = REAL_FS): Promise<string | undefined> {
  const target = path.resolve(dir);
  try {
    const first = await fs.mkdir(target, { recursive: true });
    return typeof first === 'string' ? first : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let first: string | undefined;
  const { root } = path.parse(target);
  const components = target.slice(root.length).split(path.sep).filter((c) => c.length > 0);
  let current = root;
  for (const component of components) {
    current = path.join(current, component);
    try {
      await fs.mkdir(current);
      first ??= current;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  // EEXIST was ignored above: make sure what exists at the end is a folder
  if (!(await fs.stat(target)).isDirectory()) {
    throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${target}'`), { code: 'ENOTDIR', path: target });
  }
  return first;
}

/** The folders mkdirp(dir) created, given its answer `first`: `dir` and its parents up to `first`, deepest first. */
export function foldersMade(dir: string, first: string | undefined): string[] {
  const made: string[] = [];
  if (first === undefined) return made;
  for (let d = path.resolve(dir); d.length >= first.length; d = path.dirname(d)) {
    made.push(d);
    if (d === first || d === path.dirname(d)) break;
  }
  return made;
}

/**
 * Undo mkdirp(dir) when nothing was put there: remove the folders it made,
 * deepest first, each only while empty. Never throws.
 */
export async function removeEmptyMade(dir: string, first: string | undefined): Promise<void> {
  for (const d of foldersMade(dir, first)) if (!(await rmdir(d).then(() => true, () => false))) return;
}
