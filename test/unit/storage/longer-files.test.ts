/**
 * A download leaves exactly the torrent's bytes: a file found longer than the
 * torrent says (appended to, or a 0-byte file of the torrent with content) is
 * cut to its length when storage opens for writing, with a notice naming it,
 * also when every piece is already there (nothing else is written then). The
 * bytes past a file's end lie in no piece, so no check would ever see them.
 * Only files this download creates or finds are cut: not in read mode
 * (seeding), not an unselected file, never through a hard link (the other
 * names keep every byte), and a file that cannot be written fails naming it.
 */
import { constants } from 'node:fs';
import { link, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { checkExisting } from '../../../src/storage/check.js';
import { TorrentStorage, type FileOpener } from '../../../src/storage/storage.js';
import { bits, makeTorrent, withTempDir, writeAll } from './fixture.js';

const PL = 1024;

function pieceOf(meta: Metainfo, data: Buffer, p: number): Buffer {
  return Buffer.from(data.subarray(p * meta.pieceLength, Math.min((p + 1) * meta.pieceLength, meta.totalLength)));
}

const fileOf = (root: string, meta: Metainfo, i: number): string => path.join(root, ...meta.files[i]!.path);

/** File i's bytes in the torrent. */
const bytesOf = (meta: Metainfo, data: Buffer, i: number): Buffer => data.subarray(meta.files[i]!.offset, meta.files[i]!.offset + meta.files[i]!.length);

async function append(file: string, bytes: Buffer): Promise<void> {
  await writeFile(file, bytes, { flag: 'a' });
}

describe('storage cuts a file longer than the torrent says', () => {
  it('a complete folder with a longer file and a 0-byte file with content: both cut at open, with a notice each; every piece still reads', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 0, 2000], PL);
      await writeAll(root, meta, data);
      await append(fileOf(root, meta, 0), Buffer.alloc(5000, 7));
      await append(fileOf(root, meta, 1), Buffer.from('not empty\n'));
      expect(bits(await checkExisting(root, meta, { workers: 0 }))).toBe('11111'); // the pieces cannot tell
      const notices: string[] = [];
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', onNotice: (m) => notices.push(m) });
      try {
        expect(notices).toHaveLength(2);
        expect(notices.find((m) => m.includes('f0.bin'))).toMatch(/f0\.bin" was 8000 bytes, longer than the torrent's 3000: cut the 5000 bytes past its end/);
        expect(notices.find((m) => m.includes('f1.bin'))).toMatch(/f1\.bin" was 10 bytes, longer than the torrent's 0: cut the 10 bytes past its end/);
        for (let p = 0; p < meta.pieceCount; p++) expect((await storage.readPiece(p))?.equals(pieceOf(meta, data, p))).toBe(true);
        await storage.assertFilesInPlace();
        await storage.flushStamps();
        expect(storage.stamps().get(0)?.[0]).toBe('3000'); // the resume record expects the file as tt left it
      } finally {
        await storage.close();
      }
      for (let i = 0; i < 3; i++) expect((await readFile(fileOf(root, meta, i))).equals(bytesOf(meta, data, i)), `file ${i}`).toBe(true);
    });
  });

  it('a file of the right length, or shorter, is not touched at open', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, data);
      const short = data.subarray(3000, 3000 + 1500);
      await writeFile(fileOf(root, meta, 1), short);
      const notices: string[] = [];
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', onNotice: (m) => notices.push(m) });
      await storage.close();
      expect(notices).toEqual([]);
      expect((await stat(fileOf(root, meta, 0))).size).toBe(3000);
      expect((await readFile(fileOf(root, meta, 1))).equals(short)).toBe(true);
    });
  });

  it('read mode (seeding) cuts nothing', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, data);
      await append(fileOf(root, meta, 1), Buffer.alloc(100, 1));
      const storage = await TorrentStorage.open(root, meta, { mode: 'read' });
      for (let p = 0; p < meta.pieceCount; p++) expect((await storage.readPiece(p))?.equals(pieceOf(meta, data, p))).toBe(true);
      await storage.close();
      expect((await stat(fileOf(root, meta, 1))).size).toBe(2100);
    });
  });

  it('an unselected file is not cut: the download does not own it', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, data);
      await append(fileOf(root, meta, 0), Buffer.alloc(100, 1));
      await append(fileOf(root, meta, 1), Buffer.alloc(100, 1));
      const selection = new FileSelection(meta, [false, true]);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection });
      await storage.close();
      expect((await stat(fileOf(root, meta, 0))).size).toBe(3100);
      expect((await stat(fileOf(root, meta, 1))).size).toBe(2000);
    });
  });

  it('a longer file with another hard link: copied first, so the other name keeps every byte; only the copy is cut', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'out');
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, data);
      const longer = Buffer.concat([bytesOf(meta, data, 0), Buffer.alloc(700, 9)]);
      const victim = path.join(parent, 'victim');
      await writeFile(victim, longer);
      const inside = fileOf(root, meta, 0);
      await rm(inside);
      await link(victim, inside);
      const notices: string[] = [];
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', onNotice: (m) => notices.push(m) });
      await storage.assertFilesInPlace();
      await storage.close();
      expect(notices.some((m) => /hard link/.test(m))).toBe(true);
      expect(notices.some((m) => /was 3700 bytes, longer than the torrent's 3000/.test(m))).toBe(true);
      expect((await readFile(victim)).equals(longer)).toBe(true);
      expect((await readFile(inside)).equals(bytesOf(meta, data, 0))).toBe(true);
      expect((await stat(inside)).nlink).toBe(1);
    });
  });

  it('a longer file that cannot be written: open fails naming it, its size and the torrent\'s; nothing is cut', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([3000, 2000], PL);
      await writeAll(root, meta, data);
      await append(fileOf(root, meta, 1), Buffer.alloc(10, 1));
      // as a read-only file answers a non-root user (root ignores chmod)
      const openFile: FileOpener = async (file, flags) => {
        if ((flags & (constants.O_WRONLY | constants.O_RDWR)) !== 0 && !(flags & constants.O_CREAT)) {
          throw Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: 'EACCES' });
        }
        return open(file, flags, 0o644);
      };
      const err = await TorrentStorage.open(root, meta, { mode: 'readwrite', openFile }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskError);
      expect((err as Error).message).toMatch(/^cannot write ".*f1\.bin": it is 2010 bytes, longer than the torrent's 2000, and cutting it to that failed: not writable \(permission denied\)/);
      expect((await stat(fileOf(root, meta, 1))).size).toBe(2010);
    });
  });
});
