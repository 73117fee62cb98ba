/**
 * The small-file worker (storage/small-writes.ts) writes only into exactly the
 * file storage.ts expects (same inode, one link, reached without a symlink)
 * and answers "again" (undefined), having written nothing, for anything else;
 * storage.ts then writes such files the usual way, which refuses or repairs
 * them as before. A download of many small files writes them all there,
 * without one open() of them on the main thread.
 */
import { constants } from 'node:fs';
import { link, lstat, mkdir, readFile, realpath, rename, symlink, writeFile } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { PieceGeometry } from '../../../src/core/geometry.js';
import { SmallFileWriter, type SmallWrite } from '../../../src/storage/small-writes.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { makeTorrent, withTempDir } from './fixture.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, open: vi.fn(actual.open) };
});

async function job(file: string, position: number, length: number, offset = 0): Promise<SmallWrite> {
  const st = await lstat(file, { bigint: true });
  return { path: file, expected: path.join(await realpath(path.dirname(file)), path.basename(file)), dev: String(st.dev), ino: String(st.ino), position, offset, length };
}

const bufferOf = (bytes: Buffer): ArrayBuffer => new Uint8Array(bytes).buffer;

describe('SmallFileWriter', () => {
  it("writes each job's bytes at its position and answers the file's stamp after the write", async () => {
    await withTempDir(async (dir) => {
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      await writeFile(a, Buffer.alloc(10));
      await writeFile(b, Buffer.alloc(3));
      const writer = new SmallFileWriter();
      try {
        const results = await writer.write([await job(a, 2, 5, 0), await job(b, 3, 4, 5)], bufferOf(Buffer.from('hello1234')));
        expect(await readFile(a, 'latin1')).toBe('\0\0hello\0\0\0');
        expect(await readFile(b, 'latin1')).toBe('\0\0\x001234');
        for (const [k, file] of [a, b].entries()) {
          const st = await lstat(file, { bigint: true });
          expect(results[k]).toEqual([String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)]);
        }
      } finally {
        await writer.close();
      }
    });
  });

  it('writes nothing and answers "again" for another inode, other hard links, a folder swapped for a symlink, or no file', async () => {
    await withTempDir(async (dir) => {
      await mkdir(path.join(dir, 'in'));
      await mkdir(path.join(dir, 'outside'));
      const writer = new SmallFileWriter();
      const bytes = (): ArrayBuffer => bufferOf(Buffer.from('XY'));
      const zeros = Buffer.alloc(4);
      try {
        // replaced: the same name, another inode
        const replaced = path.join(dir, 'in', 'r');
        await writeFile(replaced, zeros);
        const stale = await job(replaced, 0, 2);
        await rename(replaced, path.join(dir, 'in', 'r-old'));
        await writeFile(replaced, zeros);
        // hard-linked: its bytes are another name's too
        const linked = path.join(dir, 'in', 'l');
        await writeFile(linked, zeros);
        await link(linked, path.join(dir, 'outside', 'victim'));
        // its folder swapped for a symlink to a look-alike outside
        await mkdir(path.join(dir, 'in', 'sub'));
        const inSub = path.join(dir, 'in', 'sub', 'f');
        await writeFile(inSub, zeros);
        const subJob = await job(inSub, 0, 2);
        await rename(path.join(dir, 'in', 'sub'), path.join(dir, 'outside', 'sub'));
        await symlink(path.join(dir, 'outside', 'sub'), path.join(dir, 'in', 'sub'));
        // gone
        const gone = path.join(dir, 'in', 'g');
        await writeFile(gone, zeros);
        const goneJob = await job(gone, 0, 2);
        await fsp.rm(gone);

        for (const j of [stale, await job(linked, 0, 2), subJob, goneJob]) expect(await writer.write([j], bytes())).toEqual([undefined]);
        for (const file of [replaced, path.join(dir, 'in', 'r-old'), linked, path.join(dir, 'outside', 'sub', 'f')]) {
          expect(await readFile(file)).toEqual(zeros);
        }
        expect(await fsp.readdir(path.join(dir, 'in'))).not.toContain('g');
      } finally {
        await writer.close();
      }
    });
  });

  it('creates files empty (O_EXCL) and answers their dev and stamp; never one that is there, nor through a symlink', async () => {
    await withTempDir(async (dir) => {
      const writer = new SmallFileWriter();
      try {
        await writeFile(path.join(dir, 'there'), 'keep');
        await writeFile(path.join(dir, 'target'), 'keep');
        await symlink(path.join(dir, 'target'), path.join(dir, 'link'));
        const results = await writer.create(['new1', 'there', 'link', 'new2'].map((n) => path.join(dir, n)));
        for (const [k, name] of [[0, 'new1'], [3, 'new2']] as const) {
          const st = await lstat(path.join(dir, name), { bigint: true });
          expect(st.size).toBe(0n);
          expect(results[k]).toEqual([String(st.dev), '0', String(st.mtimeNs), String(st.ctimeNs), String(st.ino)]);
        }
        expect([results[1], results[2]]).toEqual([undefined, undefined]);
        expect(await readFile(path.join(dir, 'there'), 'latin1')).toBe('keep');
        expect(await readFile(path.join(dir, 'target'), 'latin1')).toBe('keep');
      } finally {
        await writer.close();
      }
    });
  });

  it('after close every write answers "again"', async () => {
    await withTempDir(async (dir) => {
      const a = path.join(dir, 'a');
      await writeFile(a, Buffer.alloc(4));
      const writer = new SmallFileWriter();
      await writer.close();
      expect(await writer.write([await job(a, 0, 2)], bufferOf(Buffer.from('XY')))).toEqual([undefined]);
      expect(await readFile(a)).toEqual(Buffer.alloc(4));
    });
  });
});

describe('storage with many small files', () => {
  it('more files than the handle cache holds, in a new folder: created on the worker, identities and stamps as on disk', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(Array.from({ length: 30 }, (_, i) => 50 + i), 1024);
      const opened = vi.mocked(fsp.open);
      opened.mockClear();
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', maxOpenFiles: 8 });
      const creates = opened.mock.calls.filter((c) => (Number(c[1]) & constants.O_CREAT) !== 0);
      expect(creates).toEqual([]); // the old way: one open(O_CREAT | O_EXCL) per file on the main thread
      await storage.flushStamps();
      for (const [i, f] of meta.files.entries()) {
        const st = await lstat(path.join(root, ...f.path), { bigint: true });
        expect(st.size).toBe(0n);
        expect(storage.stamps().get(i)).toEqual([String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)]);
      }
      const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
      for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, Buffer.from(data.subarray(i * 1024, i * 1024 + g.pieceSize(i))));
      await storage.assertFilesInPlace(); // the files written are the ones created (identities known)
      for (const f of meta.files) expect(await readFile(path.join(root, ...f.path))).toEqual(data.subarray(f.offset, f.offset + f.length));
      await storage.close();
    });
  });


  it('writes them on the worker: every byte lands, stamps are current, and the main thread opens none of them to write', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(Array.from({ length: 200 }, (_, i) => 100 + i), 4096);
      const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      const opened = vi.mocked(fsp.open);
      opened.mockClear();
      await Promise.all(Array.from({ length: meta.pieceCount }, (_, i) => storage.writePiece(i, Buffer.from(data.subarray(i * 4096, i * 4096 + g.pieceSize(i))))));
      await storage.flushStamps();
      const writeOpens = opened.mock.calls.filter((c) => (Number(c[1]) & (constants.O_WRONLY | constants.O_RDWR)) !== 0);
      expect(writeOpens).toEqual([]);
      for (const [i, f] of meta.files.entries()) {
        const file = path.join(root, ...f.path);
        expect(await readFile(file)).toEqual(data.subarray(f.offset, f.offset + f.length));
        const st = await lstat(file, { bigint: true });
        expect(storage.stamps().get(i)).toEqual([String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)]);
      }
      await storage.close();
    });
  });
});
