/**
 * Creates a folder and its parents (`mkdir -p`) so that failures carry the
 * real errno: Node 20's recursive mkdir reports ENOENT on a read-only file
 * system, so on ENOENT the path is retried one component at a time, which
 * surfaces EROFS/EACCES for toDiskError ("not writable"). No BEP.
 */
import { mkdir as fsMkdir, stat as fsStat } from 'node:fs/promises';
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
 * a misleading ENOENT when the cause is something else.
 */
export async function mkdirp(dir: string, fs: MkdirFs = REAL_FS): Promise<void> {
  const target = path.resolve(dir);
  try {
    await fs.mkdir(target, { recursive: true });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { root } = path.parse(target);
  const components = target.slice(root.length).split(path.sep).filter((c) => c.length > 0);
  let current = root;
  for (const component of components) {
    current = path.join(current, component);
    try {
      await fs.mkdir(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  // EEXIST was ignored above: make sure what exists at the end is a folder
  if (!(await fs.stat(target)).isDirectory()) {
    throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${target}'`), { code: 'ENOTDIR', path: target });
  }
}
