/**
 * A download's files must still be where they were written: deleting the
 * output folder (or a file, or replacing one) mid-download must not end in
 * "complete". Writes through handles opened before the deletion succeed (the
 * inode lives on, unlinked), so storage notices it in the deferred stamp's
 * fstat (nlink 0) and fails every later write, and assertFilesInPlace() checks
 * every wanted file (and the part file) by device and inode before the
 * session calls the download complete.
 */
import { link, mkdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { makeTorrent, withTempDir, writeAll } from './fixture.js';

const PL = 1024;

function pieceOf(meta: Metainfo, data: Buffer, p: number): Buffer {
  return Buffer.from(data.subarray(p * meta.pieceLength, Math.min((p + 1) * meta.pieceLength, meta.totalLength)));
}

async function writePieces(storage: TorrentStorage, meta: Metainfo, data: Buffer, pieces: Iterable<number>): Promise<void> {
  for (const p of pieces) await storage.writePiece(p, pieceOf(meta, data, p));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The DiskError `p` rejects with. */
async function diskError(p: Promise<unknown>): Promise<DiskError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DiskError);
  return err as DiskError;
}

describe('assertFilesInPlace', () => {
  it('passes when every file is where tt wrote it, also after a reopen of the storage and for files found complete', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 0, 2000, 1500], PL);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await writePieces(storage, meta, data, range(0, meta.pieceCount));
      await storage.assertFilesInPlace();
      await storage.close();
      const again = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await again.assertFilesInPlace();
      await again.close();
      const seeding = await TorrentStorage.open(root, meta, { mode: 'read' });
      await seeding.assertFilesInPlace(); // read mode: nothing was written, nothing to check
      await seeding.close();
    });
  });

  it('the whole folder deleted while its files are open: names a deleted file, and later writes fail too', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'out');
      const { meta, data } = makeTorrent([3000, 2000, 1500], PL);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await writePieces(storage, meta, data, range(0, 3));
      await rm(root, { recursive: true });
      // the open handles still take writes (into inodes with no name), until a deferred stamp (20 ms
      // after a write; sooner on a loaded machine than these writes take) sees nlink 0: then they fail
      const late = await writePieces(storage, meta, data, range(3, meta.pieceCount)).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (late !== undefined) expect(String(late)).toMatch(/[/]out[/]T[/]f[0-2]\.bin": deleted or moved while downloading/);
      const err = await diskError(storage.assertFilesInPlace());
      expect(err.message).toMatch(/^cannot write ".*[/]out[/]T[/]f[0-2]\.bin": deleted or moved while downloading/);
      // the deferred stamps saw nlink 0: from now on every write fails, naming a deleted file
      expect((await diskError(storage.writePiece(0, pieceOf(meta, data, 0)))).message).toMatch(/[/]out[/]T[/]f[0-2]\.bin": deleted or moved while downloading/);
      await storage.close();
    });
  });

  it('a file deleted mid-download fails the next write after its stamp (20 ms), even one to another file', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 3000], PL);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await writePieces(storage, meta, data, [0]);
      await rm(path.join(root, 'T', 'f0.bin'));
      await writePieces(storage, meta, data, [1]); // into the open handle: succeeds
      // its stamp, taken by itself 20 ms later, sees nlink 0; then writes fail (here: to f1 only)
      let failed: unknown;
      for (const started = Date.now(); failed === undefined && Date.now() - started < 5_000; ) {
        await sleep(20);
        failed = await storage.writePiece(5, pieceOf(meta, data, 5)).then(() => undefined, (e: unknown) => e);
      }
      expect(failed).toBeInstanceOf(DiskError);
      expect((failed as DiskError).message).toMatch(/f0\.bin": deleted or moved while downloading/);
      await storage.close();
    });
  });

  it('a file replaced by another (same name, new inode), or truncated, is named', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000, 1500], PL);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await writePieces(storage, meta, data, range(0, meta.pieceCount));
      const f1 = path.join(root, 'T', 'f1.bin');
      await rename(f1, `${f1}.moved`);
      await writeFile(f1, data.subarray(3000, 5000)); // the same bytes, another file
      expect((await diskError(storage.assertFilesInPlace())).message).toMatch(/f1\.bin": replaced while downloading/);
      await rm(f1);
      await rename(`${f1}.moved`, f1); // back: fine again
      await storage.assertFilesInPlace();
      await truncate(path.join(root, 'T', 'f2.bin'), 1000);
      expect((await diskError(storage.assertFilesInPlace())).message).toMatch(/f2\.bin": 1000 of 1500 bytes, cut short while downloading/);
      await storage.close();
    });
  });

  it('a replaced file is never written: a write that reopens it fails ("replaced"), the other file untouched', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, Buffer.alloc(meta.totalLength)); // there already: opened read-only, for writing when needed
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      const f0 = path.join(root, 'T', 'f0.bin');
      await rm(f0);
      const stranger = Buffer.alloc(3000, 7);
      await writeFile(f0, stranger);
      expect((await diskError(storage.writePiece(0, pieceOf(meta, data, 0)))).message).toMatch(/f0\.bin": replaced while downloading/);
      expect((await readFile(f0)).equals(stranger)).toBe(true);
      await storage.close();
    });
  });

  it('a file that was complete at start (never written) and is deleted meanwhile is caught too', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await mkdir(path.join(root, 'T'), { recursive: true });
      await writeFile(path.join(root, 'T', 'f0.bin'), data.subarray(0, 3000));
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await rm(path.join(root, 'T', 'f0.bin'));
      await writePieces(storage, meta, data, range(3, meta.pieceCount)); // f1's own pieces
      expect((await diskError(storage.assertFilesInPlace())).message).toMatch(/f0\.bin": deleted or moved while downloading/);
      await storage.close();
    });
  });

  it('with a selection: the part file must stay, an unselected file may go', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([1500, 1500, 1500], PL); // pieces 1 and 2 cross into f1
      const selection = new FileSelection(meta, [true, false, true]);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection });
      await writePieces(storage, meta, data, selection.wanted.indices());
      await storage.assertFilesInPlace();
      const part = path.join(root, selection.partFileName);
      await link(part, `${part}.keep`);
      await rm(part);
      expect((await diskError(storage.assertFilesInPlace())).message).toContain(JSON.stringify(part));
      await rename(`${part}.keep`, part);
      await storage.assertFilesInPlace();
      await storage.close();
      // an unselected file an earlier run created: kept current when it is there, not needed
      await writeFile(path.join(root, 'T', 'f1.bin'), data.subarray(1500, 3000));
      const again = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection });
      await writePieces(again, meta, data, [1]);
      await rm(path.join(root, 'T', 'f1.bin'));
      await sleep(100);
      await writePieces(again, meta, data, [2]);
      await again.assertFilesInPlace();
      await again.close();
    });
  });
});
