/**
 * Storage holds a bounded number of file handles whatever the torrent looks
 * like: pieces in flight that each span dozens of small files, O_DIRECT's
 * second handle per file, reads for peers while writing, a check of
 * thousands of files. (Before: only idle handles were closed, so with every
 * handle busy each new file opened one more, up to EMFILE under `ulimit -n
 * 1024`: the tester's 3000-file torrent.)
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PieceGeometry } from '../../../src/core/geometry.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { checkExisting } from '../../../src/storage/check.js';
import { PieceBuffers } from '../../../src/storage/piece-buffers.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { directSupported } from '../../helpers/direct-io.js';
import { bits, makeTorrent, openDescriptors, peakDuring, withTempDir } from './fixture.js';

const fds = openDescriptors;

/** `count` files of 100..149 bytes in folders of 100: with 4 KiB pieces each piece spans ~30 of them. */
function manySmallFiles(count: number, pieceLength = 4096): { meta: Metainfo; data: Buffer } {
  const made = makeTorrent(
    Array.from({ length: count }, (_, i) => 100 + (i % 50)),
    pieceLength,
  );
  const files = made.meta.files.map((f, i) => ({ ...f, path: ['T', `d${Math.floor(i / 100)}`, `f${i}.bin`] }));
  return { meta: { ...made.meta, files }, data: made.data };
}

function pieceOf(data: Buffer, meta: Metainfo, i: number): Buffer {
  const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
  return data.subarray(g.pieceOffset(i), g.pieceOffset(i) + g.pieceSize(i));
}

async function expectFiles(root: string, meta: Metainfo, data: Buffer): Promise<void> {
  for (const f of meta.files) {
    const onDisk = await readFile(path.join(root, ...f.path));
    expect(onDisk.equals(data.subarray(f.offset, f.offset + f.length)), f.path.join('/')).toBe(true);
  }
}

describe('storage holds a bounded number of handles', () => {
  it('every piece of a 1,500-file torrent written at once (each piece spans ~30 files): never more than maxOpenFiles, every byte lands', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = manySmallFiles(1500);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', maxOpenFiles: 8 });
      const before = fds();
      let handles = 0;
      const { peak: peakFds } = await peakDuring(
        () => {
          handles = Math.max(handles, storage.openFiles);
          return fds();
        },
        () => Promise.all(Array.from({ length: meta.pieceCount }, (_, i) => storage.writePiece(i, Buffer.from(pieceOf(data, meta, i))))),
      );
      expect(handles).toBeLessThanOrEqual(8);
      expect(peakFds - before).toBeLessThanOrEqual(8);
      // reads for peers while pieces are written: the same bound
      const { peak: reads } = await peakDuring(
        () => storage.openFiles,
        () => Promise.all(Array.from({ length: meta.pieceCount }, async (_, i) => expect((await storage.readPiece(i))?.equals(pieceOf(data, meta, i))).toBe(true))),
      );
      expect(reads).toBeLessThanOrEqual(8);
      await storage.close();
      expect(fds()).toBeLessThanOrEqual(before);
      await expectFiles(root, meta, data);
    });
  });

  it('open() of a folder with thousands of files, and the default bound (64)', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = manySmallFiles(3000);
      const before = fds();
      let storage!: TorrentStorage;
      const { peak: peakOpen } = await peakDuring(fds, async () => (storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' })));
      expect(peakOpen - before).toBeLessThanOrEqual(64);
      const { peak: peakWrites } = await peakDuring(fds, () =>
        Promise.all(Array.from({ length: meta.pieceCount }, (_, i) => storage.writePiece(i, Buffer.from(pieceOf(data, meta, i))))),
      );
      expect(peakWrites - before).toBeLessThanOrEqual(64);
      expect(storage.openFiles).toBeLessThanOrEqual(64);
      await storage.close();
      await expectFiles(root, meta, data);
      // checking the same folder: bounded too (a handle per file read in parallel, a few for the hash workers)
      const { peak: peakCheck } = await peakDuring(fds, async () => expect(bits(await checkExisting(root, meta, { workers: 0 }))).toBe('1'.repeat(meta.pieceCount)));
      expect(peakCheck - before).toBeLessThanOrEqual(40);
    });
  });

  it("O_DIRECT's second handle per file counts in the same bound", async () => {
    await withTempDir(async (root) => {
      if (!(await directSupported(root))) throw new Error('this test needs a temp folder on a file system with O_DIRECT (ext4, xfs, btrfs, tmpfs on Linux >= 6.6)');
      const PIECE = 65536;
      // six files, pieces crossing their boundaries: aligned middles go direct, heads and tails buffered
      const { meta, data } = makeTorrent([3 * PIECE + 100, 2 * PIECE - 100, PIECE + 4096, 5000, 2 * PIECE, PIECE - 5000], PIECE);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', directWrites: true, maxOpenFiles: 3 });
      const pool = new PieceBuffers(PIECE);
      const { peak } = await peakDuring(
        () => storage.openFiles,
        () =>
          Promise.all(
            Array.from({ length: meta.pieceCount }, async (_, i) => {
              const piece = pieceOf(data, meta, i);
              const buf = pool.take(piece.length);
              piece.copy(buf);
              await storage.writePiece(i, buf);
              pool.give(buf);
            }),
          ),
      );
      expect(storage.directWrites?.bytes).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(3);
      await storage.close();
      await expectFiles(root, meta, data);
    });
  });

  it('a selection adopting many files from the part file at open (two handles at once each), at the minimum bound: no deadlock, nothing lost', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = manySmallFiles(400);
      // a first run with every other file: the others' shares of wanted pieces go to the part file
      const half = new FileSelection(meta, meta.files.map((_, i) => i % 2 === 0));
      const first = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: half, maxOpenFiles: 2 });
      await Promise.all([...half.wanted.indices()].map((i) => first.writePiece(i, Buffer.from(pieceOf(data, meta, i)))));
      await first.close();
      // then all of them: each newly selected file is built from the part file while it is leased
      const all = FileSelection.all(meta);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: all, maxOpenFiles: 1 });
      expect(storage.openFiles).toBeLessThanOrEqual(2);
      for (const i of half.wanted.indices()) expect((await storage.readPiece(i))?.equals(pieceOf(data, meta, i)), `piece ${i}`).toBe(true);
      await storage.close();
    });
  });
});
