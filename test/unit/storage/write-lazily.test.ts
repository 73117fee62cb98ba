/**
 * Files are opened for writing only when a write needs them: a complete (or
 * partly complete) folder whose files cannot be written (read-only to the
 * user, immutable, on a read-only mount) opens, reads and checks as
 * complete; a piece that must go into such a file fails naming it, "not
 * writable". (Before: open() opened every file O_RDWR and failed with
 * `cannot create ".../blob.bin": not writable` for an existing, complete file.)
 *
 * The kernel's own refusal as root: `chattr +i` (immutable: even root gets
 * EPERM for O_RDWR; needs ext2/3/4). The CLI as a real non-root user
 * (setpriv, chmod 444) is in test/integration/safety/storage-faults.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { TorrentStorage, type FileOpener } from '../../../src/storage/storage.js';
import { checkExisting } from '../../../src/storage/check.js';
import { bits, makeTorrent, withTempDir, writeAll } from './fixture.js';

const PL = 1024;

function pieceOf(meta: Metainfo, data: Buffer, p: number): Buffer {
  return Buffer.from(data.subarray(p * meta.pieceLength, Math.min((p + 1) * meta.pieceLength, meta.totalLength)));
}

/** Runs `fn` with `files` immutable (chattr +i), undone afterwards. */
async function immutable<T>(files: readonly string[], fn: () => Promise<T>): Promise<T> {
  try {
    execFileSync('chattr', ['+i', ...files], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`chattr +i is not permitted here (needs root and ext2/3/4): ${(err as Error).message}`);
  }
  try {
    return await fn();
  } finally {
    execFileSync('chattr', ['-i', ...files]);
  }
}

/** An opener recording the access mode of every open that succeeded. */
function recording(): { openFile: FileOpener; writable: string[] } {
  const writable: string[] = [];
  const openFile: FileOpener = async (file, flags) => {
    const fh = await open(file, flags, 0o644);
    if ((flags & (constants.O_WRONLY | constants.O_RDWR)) !== 0) writable.push(path.basename(file));
    return fh;
  };
  return { openFile, writable };
}

describe('files are opened for writing only when a write needs them', () => {
  it('a complete folder: open(), reads and the completion check open nothing for writing', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 0, 2000], PL);
      await writeAll(root, meta, data);
      const { openFile, writable } = recording();
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', openFile });
      for (let p = 0; p < meta.pieceCount; p++) expect((await storage.readPiece(p))?.equals(pieceOf(meta, data, p))).toBe(true);
      await storage.assertFilesInPlace();
      await storage.sync([0, 1, 2]);
      await storage.close();
      expect(writable).toEqual([]);
    });
  });

  it('immutable complete files (EPERM for writing, even as root): opened, read and checked as complete', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, data);
      const files = meta.files.map((f) => path.join(root, ...f.path));
      await immutable(files, async () => {
        expect(bits(await checkExisting(root, meta, { workers: 0 }))).toBe('11111');
        const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
        for (let p = 0; p < meta.pieceCount; p++) expect((await storage.readPiece(p))?.equals(pieceOf(meta, data, p))).toBe(true);
        await storage.assertFilesInPlace();
        await storage.close();
      });
    });
  });

  it('partly complete: the missing file is written; a piece that must go into an immutable file fails, "not writable", naming it', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL); // piece 2 spans both files
      await writeAll(root, meta, data);
      const f0 = path.join(root, 'T', 'f0.bin');
      const f1 = path.join(root, 'T', 'f1.bin');
      await writeAll(root, { ...meta, files: [meta.files[1]!] }, Buffer.alloc(meta.totalLength)); // f1 zeroed: to be downloaded
      await immutable([f0], async () => {
        const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
        for (const p of [3, 4]) await storage.writePiece(p, pieceOf(meta, data, p)); // f1 only
        const err = await storage.writePiece(2, pieceOf(meta, data, 2)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DiskError);
        expect((err as DiskError).message).toBe(`cannot write ${JSON.stringify(f0)}: not writable (permission denied) (EPERM)`);
        await storage.close();
      });
      expect((await readFile(f0)).equals(data.subarray(0, 3000))).toBe(true);
      expect((await readFile(f1)).subarray(1096).equals(data.subarray(4096))).toBe(true);
    });
  });

  it('a missing file in a folder it cannot create in still says "cannot create"', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent([3000, 2000], PL);
      const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      const noCreate: FileOpener = (file, flags) => ((flags & constants.O_CREAT) !== 0 ? Promise.reject(eacces) : open(file, flags));
      await expect(TorrentStorage.open(root, meta, { mode: 'readwrite', openFile: noCreate })).rejects.toThrow(
        /^cannot create ".*f[01]\.bin": not writable \(permission denied\) \(EACCES\)$/,
      );
    });
  });
});
