/**
 * A newly selected file whose share of the part file is nothing but zeros (holes: pieces no
 * earlier run wrote, though they lie before the part file's end) has no bytes to move: open()
 * creates it in place, as long as those zeros reached, with no temporary, no sync and no
 * rename (a review widened --select over 20,000 files: 14,981 fdatasync+rename for the few
 * dozen files with bytes there). A file with bytes there is still adopted through its
 * temporary, synced before the rename; one whose verified share is all zeros keeps its piece.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { checkExisting } from '../../../src/storage/check.js';
import { TorrentStorage, type FileOpener } from '../../../src/storage/storage.js';
import { makeTorrent, withTempDir } from './fixture.js';

// 1 KiB pieces: A 0-1500 | B 1500-2500 | C 2500-3500 | D 3500-5000. Only D selected first: its
// piece 3 (3072-4096) puts C's 3072-3500 in the part file, which then ends at 3500, past A and B.
const PL = 1024;
const LENGTHS = [1500, 1000, 1000, 1500];

const selectionOf = (meta: Metainfo, indexes: readonly number[]): FileSelection =>
  new FileSelection(meta, meta.files.map((_, i) => indexes.includes(i)));

function pieceOf(meta: Metainfo, data: Buffer, p: number): Buffer {
  return data.subarray(p * PL, Math.min((p + 1) * PL, meta.totalLength));
}

/** The first run: only D, its pieces written. */
async function firstRun(root: string, meta: Metainfo, data: Buffer): Promise<void> {
  const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: selectionOf(meta, [3]) });
  for (const p of [3, 4]) await storage.writePiece(p, Buffer.from(pieceOf(meta, data, p)));
  await storage.close();
}

/** An opener counting, per file name, the opens that create and the syncs of their handles. */
function spying(): { openFile: FileOpener; creates: string[]; syncs: string[] } {
  const creates: string[] = [];
  const syncs: string[] = [];
  const openFile: FileOpener = async (file, flags) => {
    const fh = await open(file, flags, 0o644);
    if (flags & constants.O_CREAT) creates.push(path.basename(file));
    return new Proxy(fh, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop);
        if (typeof value !== 'function') return value;
        const fn = (value as (...a: unknown[]) => unknown).bind(target);
        if (prop !== 'datasync' && prop !== 'sync') return fn;
        return (...a: unknown[]) => {
          syncs.push(path.basename(file));
          return fn(...a);
        };
      },
    });
  };
  return { openFile, creates, syncs };
}

async function zeros(file: string): Promise<boolean> {
  return (await readFile(file)).every((b) => b === 0);
}

describe('a newly selected file with no bytes in the part file', () => {
  it('is created in place (no temporary, no sync); one with bytes there is still adopted through its temporary and synced', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      await firstRun(root, meta, data);
      const all = FileSelection.all(meta);
      const spy = spying();
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: all, openFile: spy.openFile });
      await storage.close();
      const temp = (i: number): string => `.${meta.infoHashHex}.${i}.tt-adopt`;
      expect(spy.creates).not.toContain(temp(0));
      expect(spy.creates).not.toContain(temp(1));
      expect(spy.creates).toEqual(expect.arrayContaining(['f0.bin', 'f1.bin', temp(2)]));
      expect(spy.syncs).toEqual([temp(2)]); // C alone, before its rename
      // on disk: A and B as the part file had them (zeros as far as it reached), C with its bytes
      const file = (i: number): string => path.join(root, 'T', `f${i}.bin`);
      expect((await lstat(file(0))).size).toBe(1500);
      expect((await lstat(file(1))).size).toBe(1000);
      expect(await zeros(file(0))).toBe(true);
      expect(await zeros(file(1))).toBe(true);
      expect((await readFile(file(2))).subarray(3072 - 2500).equals(data.subarray(3072, 3500))).toBe(true);
      expect((await readdir(path.join(root, 'T'))).sort()).toEqual(['f0.bin', 'f1.bin', 'f2.bin', 'f3.bin']);
    });
  });

  it('with the default opener too: created in place, no temporary left, every verified piece kept, and the download completes', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      await firstRun(root, meta, data);
      const all = FileSelection.all(meta);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: all });
      expect((await storage.readPiece(3))?.equals(pieceOf(meta, data, 3))).toBe(true);
      // A and B made as long as the part file reached, no byte written (an adoption copied its zeros in)
      for (const i of [0, 1]) expect((await lstat(path.join(root, 'T', `f${i}.bin`))).blocks, `f${i}.bin is sparse`).toBe(0);
      for (const p of [0, 1, 2]) await storage.writePiece(p, Buffer.from(pieceOf(meta, data, p)));
      await storage.assertFilesInPlace();
      await storage.close();
      expect((await readdir(path.join(root, 'T'))).sort()).toEqual(['f0.bin', 'f1.bin', 'f2.bin', 'f3.bin']);
      for (const [i, f] of meta.files.entries()) {
        expect((await readFile(path.join(root, ...f.path))).equals(data.subarray(f.offset, f.offset + f.length)), `file ${i}`).toBe(true);
      }
      expect((await checkExisting(root, meta, { workers: 0 })).complete).toBe(true);
    });
  });

  it('a verified share that is all zeros is kept: the file is as long as the part file had it, and the piece still reads whole', async () => {
    for (const openFile of [undefined, spying().openFile]) {
      await withTempDir(async (root) => {
        // C's share of piece 3 (3072-3500) is zeros: written, verified, and still "nothing to move"
        const { meta, data } = makeTorrent(LENGTHS, PL, randomBytes(5000).fill(0, 3072, 3500));
        await firstRun(root, meta, data);
        const all = FileSelection.all(meta);
        expect((await checkExisting(root, meta, { selection: all, workers: 0 })).has(3)).toBe(true);
        const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: all, ...(openFile ? { openFile } : {}) });
        expect((await storage.readPiece(3))?.equals(pieceOf(meta, data, 3))).toBe(true);
        await storage.close();
        expect((await lstat(path.join(root, 'T', 'f2.bin'))).size).toBe(1000);
        expect((await checkExisting(root, meta, { selection: all, workers: 0 })).has(3)).toBe(true);
      });
    }
  });
});
