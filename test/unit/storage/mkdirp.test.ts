import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toDiskError } from '../../../src/storage/disk-error.js';
import { mkdirp, type MkdirFs } from '../../../src/storage/mkdirp.js';
import { withTempDir } from './fixture.js';

const errno = (code: string): Error => Object.assign(new Error(code), { code });

describe('mkdirp', () => {
  it('creates nested folders, and is a no-op when they exist', async () => {
    await withTempDir(async (dir) => {
      const deep = path.join(dir, 'a', 'b', 'c');
      await mkdirp(deep);
      expect((await stat(deep)).isDirectory()).toBe(true);
      await expect(mkdirp(deep)).resolves.toBeUndefined();
    });
  });

  it('reports a file in the way as ENOTDIR (real fs)', async () => {
    await withTempDir(async (dir) => {
      await writeFile(path.join(dir, 'file'), 'x');
      await expect(mkdirp(path.join(dir, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(mkdirp(path.join(dir, 'file'))).rejects.toMatchObject({ code: expect.stringMatching(/^(EEXIST|ENOTDIR)$/) });
    });
  });

  // Node 20 on a read-only file system: recursive mkdir says ENOENT, plain mkdir says EROFS
  function readOnlyFs(existing: string, made: string[]): MkdirFs {
    return {
      mkdir: async (dir, opts) => {
        if (opts?.recursive) throw errno('ENOENT');
        if (existing === dir || existing.startsWith(dir + path.sep)) throw errno('EEXIST');
        made.push(dir);
        throw errno('EROFS');
      },
      stat: async () => ({ isDirectory: () => true }),
    };
  }

  it('surfaces EROFS where recursive mkdir only says ENOENT, so the message says "not writable"', async () => {
    const made: string[] = [];
    const existing = path.resolve('/mnt/ro');
    const err = await mkdirp(path.join(existing, 'out', 'T'), readOnlyFs(existing, made)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EROFS' });
    expect(made).toEqual([path.join(existing, 'out')]); // stopped at the first folder it could not create
    expect(toDiskError('create', path.join(existing, 'out'), err).message).toMatch(/not writable \(read-only file system\) \(EROFS\)/);
  });

  it('passes other errors of the recursive mkdir through unchanged', async () => {
    const fs: MkdirFs = { mkdir: () => Promise.reject(errno('EACCES')), stat: () => Promise.reject(errno('ENOENT')) };
    await expect(mkdirp('/x/y', fs)).rejects.toMatchObject({ code: 'EACCES' });
  });

  it('after a recursive ENOENT, creates the path one folder at a time (real fs)', async () => {
    await withTempDir(async (dir) => {
      let first = true;
      const fs: MkdirFs = {
        mkdir: (d, opts) => {
          if (opts?.recursive && first) {
            first = false;
            return Promise.reject(errno('ENOENT'));
          }
          return mkdir(d, opts);
        },
        stat,
      };
      const deep = path.join(dir, 'x', 'y');
      await mkdirp(deep, fs);
      expect((await stat(deep)).isDirectory()).toBe(true);
    });
  });
});
