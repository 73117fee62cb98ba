/**
 * Files the path lookups found missing (safe-path.ts lookupAllInside: a folder on the way
 * missing, or ENOENT) cost nothing more at start: resume.ts stamps them absent without an
 * lstat each and check.ts reads nothing of them without an open each. Before, a first
 * download of a 20,000-file torrent made 20,000 failed lstats and 20,000 failed opens
 * before its first piece. What is there is still stamped and checked, and a file the lookup
 * found is still opened (and refused when it is not a regular file).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { checkExisting } from '../../../src/storage/check.js';
import { stampFolder } from '../../../src/storage/resume.js';
import { lookupAllInside } from '../../../src/storage/safe-path.js';
import { makeTorrent, withTempDir } from './fixture.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, lstat: vi.fn(actual.lstat), open: vi.fn(actual.open) };
});

/** The paths among `files` that were passed to `fn` (lstat or open) since its last clear. */
function calledOn(fn: typeof fsp.lstat | typeof fsp.open, files: readonly string[]): string[] {
  const seen = new Set(vi.mocked(fn).mock.calls.map((c) => String(c[0])));
  return files.filter((f) => seen.has(f));
}

describe('files found missing by the lookups', () => {
  it('a folder that does not exist: every file under it is missing, with no lstat or open of any', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent(Array.from({ length: 40 }, () => 300), 1024);
      const files = meta.files.map((f) => path.join(root, ...f.path));
      expect((await lookupAllInside(root, meta.files.map((f) => f.path))).map((r) => r.missing)).toEqual(files.map(() => true));
      vi.mocked(fsp.lstat).mockClear();
      vi.mocked(fsp.open).mockClear();
      const stamps = await stampFolder(root, meta, '.none.tt-parts');
      expect(stamps.files).toEqual(files.map(() => null));
      const have = await checkExisting(root, meta, { workers: 0 });
      expect(have.count).toBe(0);
      expect(calledOn(fsp.lstat, files)).toEqual([]);
      expect(calledOn(fsp.open, files)).toEqual([]);
    });
  });

  it('in a folder that exists: what is there is stamped and checked, what is not costs one lookup, never an open', async () => {
    await withTempDir(async (root) => {
      // 8 files of 1 KiB in 1 KiB pieces: the even ones written, the odd ones not there
      const { meta, data } = makeTorrent(Array.from({ length: 8 }, () => 1024), 1024);
      const files = meta.files.map((f) => path.join(root, ...f.path));
      await mkdir(path.dirname(files[0]!), { recursive: true });
      for (let i = 0; i < 8; i += 2) await writeFile(files[i]!, data.subarray(i * 1024, (i + 1) * 1024));
      const present = files.filter((_, i) => i % 2 === 0);
      const absent = files.filter((_, i) => i % 2 === 1);
      expect((await lookupAllInside(root, meta.files.map((f) => f.path))).map((r) => r.missing)).toEqual(files.map((_, i) => i % 2 === 1));
      vi.mocked(fsp.open).mockClear();
      const have = await checkExisting(root, meta, { workers: 0 });
      expect([...have.indices()]).toEqual([0, 2, 4, 6]);
      expect(calledOn(fsp.open, absent)).toEqual([]);
      expect(calledOn(fsp.open, present)).toEqual(present);
      const stamps = await stampFolder(root, meta, '.none.tt-parts');
      expect(stamps.files.map((s) => s !== null)).toEqual(files.map((_, i) => i % 2 === 0));
    });
  });
});
