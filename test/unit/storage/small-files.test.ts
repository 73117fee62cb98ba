/**
 * The small-file worker (storage/small-files.ts) writes only into exactly the
 * file storage.ts expects (same inode, one link, reached without a symlink)
 * and answers "again" (undefined), having written nothing, for anything else;
 * storage.ts then writes such files the usual way, which refuses or repairs
 * them as before. It reads only from the file expected (reached without a
 * symlink, the inode storage.ts knows when it knows one, every byte there),
 * else answers "again". A download of many small files writes them all
 * there, and a seed reads them there, without one open() of them on the
 * main thread; what the worker refuses, storage refuses as before.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { link, lstat, mkdir, readFile, realpath, rename, symlink, writeFile } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { STAT_BATCH_MIN, SmallFileWorker, statMany, type SmallRead, type SmallWrite } from '../../../src/storage/small-files.js';
import { checkExisting } from '../../../src/storage/check.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { ensureBuilt } from '../../helpers/build.js';
import { makeTorrent, withTempDir } from './fixture.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, open: vi.fn(actual.open) };
});

async function job(file: string, position: number, length: number, offset = 0): Promise<SmallWrite> {
  const st = await lstat(file, { bigint: true });
  return { path: file, expected: path.join(await realpath(path.dirname(file)), path.basename(file)), dev: String(st.dev), ino: String(st.ino), position, offset, length };
}

async function readJob(file: string, position: number, length: number, offset = 0, identity = true): Promise<SmallRead> {
  const st = await lstat(file, { bigint: true });
  const expected = path.join(await realpath(path.dirname(file)), path.basename(file));
  return { path: file, expected, ...(identity && { dev: String(st.dev), ino: String(st.ino) }), position, offset, length };
}

/** Piece `i` of `data` in a torrent of `pieceLength`-byte pieces (a copy). */
function pieceOf(data: Buffer, pieceLength: number, i: number): Buffer {
  return Buffer.from(data.subarray(i * pieceLength, Math.min(data.length, (i + 1) * pieceLength)));
}

/** Writes every piece of `data` (4 KiB pieces) through `storage`. */
async function writePieces(storage: TorrentStorage, data: Buffer, pieceCount: number): Promise<void> {
  for (let i = 0; i < pieceCount; i++) await storage.writePiece(i, pieceOf(data, 4096, i));
}

/** A torrent of `count` small files (100 + i bytes, 4 KiB pieces), written under `root` by a storage closed after. */
async function smallFilesOnDisk(root: string, count: number): Promise<ReturnType<typeof makeTorrent>> {
  const made = makeTorrent(Array.from({ length: count }, (_, i) => 100 + i), 4096);
  const writer = await TorrentStorage.open(root, made.meta, { mode: 'readwrite' });
  await writePieces(writer, made.data, made.meta.pieceCount);
  await writer.close();
  return made;
}

/** Runs `fn` with a temporary folder and a worker, closed after. */
async function withWorker(fn: (dir: string, worker: SmallFileWorker) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const worker = new SmallFileWorker();
    try {
      await fn(dir, worker);
    } finally {
      await worker.close();
    }
  });
}

const bufferOf = (bytes: Buffer): ArrayBuffer => new Uint8Array(bytes).buffer;

describe('SmallFileWorker', () => {
  it("writes each job's bytes at its position and answers the file's stamp after the write", async () => {
    await withWorker(async (dir, writer) => {
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      await writeFile(a, Buffer.alloc(10));
      await writeFile(b, Buffer.alloc(3));
      const results = await writer.write([await job(a, 2, 5, 0), await job(b, 3, 4, 5)], bufferOf(Buffer.from('hello1234')));
      expect(await readFile(a, 'latin1')).toBe('\0\0hello\0\0\0');
      expect(await readFile(b, 'latin1')).toBe('\0\0\x001234');
      for (const [k, file] of [a, b].entries()) {
        const st = await lstat(file, { bigint: true });
        expect(results[k]).toEqual([String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)]);
      }
    });
  });

  it('writes nothing and answers "again" for another inode, other hard links, a folder swapped for a symlink, or no file', async () => {
    await withWorker(async (dir, writer) => {
      await mkdir(path.join(dir, 'in'));
      await mkdir(path.join(dir, 'outside'));
      const bytes = (): ArrayBuffer => bufferOf(Buffer.from('XY'));
      const zeros = Buffer.alloc(4);
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
    });
  });

  it('creates files empty (O_EXCL) and answers their dev and stamp; never one that is there, nor through a symlink', async () => {
    await withWorker(async (dir, writer) => {
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
    });
  });

  it('reads each job\'s bytes from its position into its offset of the buffer, which comes back', async () => {
    await withWorker(async (dir, worker) => {
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      await writeFile(a, 'hello world');
      await writeFile(b, '0123456789');
      const sent = new ArrayBuffer(9);
      const { buffer, got } = await worker.read([await readJob(a, 6, 5, 0), await readJob(b, 3, 4, 5, false)], sent);
      expect(got).toEqual([5, 4]);
      expect(sent.byteLength).toBe(0); // transferred: the bytes are in the buffer that came back
      expect(Buffer.from(buffer).toString('latin1')).toBe('world3456');
      // a SharedArrayBuffer is filled in place
      const shared = new SharedArrayBuffer(12);
      const inPlace = await worker.read([await readJob(a, 0, 5, 7)], shared);
      expect([inPlace.buffer, inPlace.got]).toEqual([shared, [5]]);
      expect(Buffer.from(shared).toString('latin1')).toBe('\0'.repeat(7) + 'hello');
    });
  });

  it('reads nothing from a file that is not the one expected, and answers "again" for it and for a missing one; a short file\'s bytes', async () => {
    await withWorker(async (dir, worker) => {
      await mkdir(path.join(dir, 'in'));
      await mkdir(path.join(dir, 'outside'));
      const secret = 'SECRET';
      // its folder swapped for a symlink to a look-alike outside
      await mkdir(path.join(dir, 'in', 'sub'));
      const inSub = path.join(dir, 'in', 'sub', 'f');
      await writeFile(inSub, 'inside');
      const subJob = await readJob(inSub, 0, 6);
      await rename(path.join(dir, 'in', 'sub'), path.join(dir, 'outside', 'sub'));
      await writeFile(path.join(dir, 'outside', 'sub', 'f'), secret);
      await symlink(path.join(dir, 'outside', 'sub'), path.join(dir, 'in', 'sub'));
      // the file itself swapped for a symlink
      const swapped = path.join(dir, 'in', 's');
      await writeFile(swapped, 'inside');
      const swappedJob = await readJob(swapped, 0, 6);
      await fsp.rm(swapped);
      await writeFile(path.join(dir, 'outside', 's'), secret);
      await symlink(path.join(dir, 'outside', 's'), swapped);
      // replaced: the same name, another inode (storage knows the old one)
      const replaced = path.join(dir, 'in', 'r');
      await writeFile(replaced, 'inside');
      const staleJob = await readJob(replaced, 0, 6);
      await rename(replaced, path.join(dir, 'in', 'r-old'));
      await writeFile(replaced, secret);
      // short, and gone
      const short = path.join(dir, 'in', 'short');
      await writeFile(short, 'insi');
      const gone = path.join(dir, 'in', 'g');
      await writeFile(gone, 'inside');
      const goneJob = await readJob(gone, 0, 6);
      await fsp.rm(gone);

      // a FIFO under a file's name: no regular file, and the open must not block
      const fifo = path.join(dir, 'in', 'fifo');
      execFileSync('mkfifo', [fifo]);
      const fifoJob = { path: fifo, expected: path.join(await realpath(path.join(dir, 'in')), 'fifo'), position: 0, offset: 0, length: 6 };

      const jobs = [subJob, swappedJob, staleJob, await readJob(short, 0, 6), goneJob, fifoJob].map((j, k) => ({ ...j, offset: 6 * k }));
      const { buffer, got } = await worker.read(jobs, new ArrayBuffer(6 * jobs.length));
      expect(got).toEqual([-1, -1, -1, 4, -1, -1]); // the short file: the 4 bytes it has
      expect(Buffer.from(buffer).toString('latin1')).not.toContain('SECRET');
    });
  });

  it('stat: what lstat says (never following a symlink), undefined for what it cannot; statMany only for many paths', async () => {
    await withWorker(async (dir, worker) => {
      await writeFile(path.join(dir, 'f'), 'abc');
      await mkdir(path.join(dir, 'd'));
      await symlink(path.join(dir, 'f'), path.join(dir, 'l'));
      const names = ['f', 'd', 'l', 'missing'];
      const results = await worker.stat(names.map((n) => path.join(dir, n)));
      for (const [k, name] of ['f', 'd', 'l'].entries()) {
        const st = await lstat(path.join(dir, name), { bigint: true });
        expect(results.at(k)).toEqual({ isFile: st.isFile(), dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs });
      }
      expect(results.at(0)!.isFile).toBe(true);
      expect(results.at(2)!.isFile).toBe(false); // the symlink itself, not its target
      expect(results.at(3)).toBeUndefined();
      expect(results.at(4)).toBeUndefined(); // past the paths asked
      const few = Array.from({ length: STAT_BATCH_MIN - 1 }, () => path.join(dir, 'f'));
      const small = await statMany(few);
      expect(few.map((_, k) => small.at(k))).toEqual(few.map(() => undefined)); // the caller lstats them
      expect((await statMany([...few, path.join(dir, 'f')])).at(0)).toEqual(results.at(0));
    });
  });

  it('a request under way keeps the process alive; an idle worker does not', async () => {
    ensureBuilt();
    await withTempDir(async (dir) => {
      const module = pathToFileURL(path.join(import.meta.dirname, '../../../dist/storage/small-files.js')).href;
      const script = path.join(dir, 'stat.mjs');
      // nothing else keeps this process alive while it waits for the worker's answer
      await writeFile(script, `import { statMany } from ${JSON.stringify(module)};\nconst r = await statMany(Array(64).fill('/'));\nconsole.log([...Array(64).keys()].filter((k) => r.at(k)?.isFile === false).length);\n`);
      const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
      expect([run.status, run.stdout.trim()]).toEqual([0, '64']); // unreferenced while it owes the answer: exit 13, nothing printed
    });
  });

  it('after close every write answers "again"', async () => {
    await withTempDir(async (dir) => {
      const a = path.join(dir, 'a');
      await writeFile(a, Buffer.alloc(4));
      const writer = new SmallFileWorker();
      await writer.close();
      expect(await writer.write([await job(a, 0, 2)], bufferOf(Buffer.from('XY')))).toEqual([undefined]);
      expect(await readFile(a)).toEqual(Buffer.alloc(4));
      const { buffer, got } = await writer.read([await readJob(a, 0, 2)], new ArrayBuffer(2));
      expect([got, buffer.byteLength]).toEqual([[-1], 2]);
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
      for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, pieceOf(data, 1024, i));
      await storage.assertFilesInPlace(); // the files written are the ones created (identities known)
      for (const f of meta.files) expect(await readFile(path.join(root, ...f.path))).toEqual(data.subarray(f.offset, f.offset + f.length));
      await storage.close();
    });
  });


  it('writes them on the worker: every byte lands, stamps are current, and the main thread opens none of them to write', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(Array.from({ length: 200 }, (_, i) => 100 + i), 4096);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      const opened = vi.mocked(fsp.open);
      opened.mockClear();
      await Promise.all(Array.from({ length: meta.pieceCount }, (_, i) => storage.writePiece(i, pieceOf(data, 4096, i))));
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

  it('a seed reads them on the worker: every byte as on disk, the main thread opens almost none; a file swapped for a symlink is refused as before', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'root');
      const { meta, data } = await smallFilesOnDisk(root, 200);

      const storage = await TorrentStorage.open(root, meta, { mode: 'read' });
      const opened = vi.mocked(fsp.open);
      opened.mockClear();
      for (let i = 0; i < meta.pieceCount; i++) expect(await storage.readPiece(i)).toEqual(pieceOf(data, 4096, i));
      const fileOpens = opened.mock.calls.filter((c) => String(c[0]).startsWith(root + path.sep) && (Number(c[1]) & constants.O_DIRECTORY) === 0);
      expect(fileOpens.length).toBeLessThan(5); // the usual way: an open for each of the 200 files
      expect(await storage.readBlock(3, 100, 1000)).toEqual(data.subarray(3 * 4096 + 100, 3 * 4096 + 1100));

      // swapped for a symlink to a file of the same length outside: refused, never read
      const victim = meta.files[150]!;
      const file = path.join(root, ...victim.path);
      const outside = path.join(parent, 'outside');
      await writeFile(outside, Buffer.alloc(victim.length, 0x53));
      await fsp.rm(file);
      await symlink(outside, file);
      const index = Math.floor(victim.offset / 4096);
      await expect(storage.readPiece(index)).rejects.toThrow(/cannot read|outside|symbolic|refus/i);
      await storage.close();
    });
  });

  it('a download reads back the files it created on the worker; one replaced by another inode is never read', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(Array.from({ length: 60 }, (_, i) => 100 + i), 4096);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await writePieces(storage, data, meta.pieceCount);
      for (let i = 0; i < meta.pieceCount; i++) expect(await storage.readPiece(i)).toEqual(pieceOf(data, 4096, i));
      const victim = meta.files[40]!;
      const file = path.join(root, ...victim.path);
      await rename(file, file + '.old');
      await writeFile(file, Buffer.alloc(victim.length, 0x53));
      const index = Math.floor(victim.offset / 4096);
      // refused (the worker and a fresh open see another inode), or the bytes tt wrote through a handle still open: never the impostor's
      const got = await storage.readPiece(index).catch((err: Error) => err);
      if (got instanceof Error) expect(got.message).toMatch(/replaced|changed|another/i);
      else expect(got).toEqual(pieceOf(data, 4096, index));
      await storage.close();
    });
  });

  it('checking them reads them on the worker: the same answer, a damaged file found, almost no open() on the main thread', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = await smallFilesOnDisk(root, 300);
      const damaged = meta.files[123]!;
      const bytes = await readFile(path.join(root, ...damaged.path));
      bytes[7] = bytes[7]! ^ 0xff;
      await writeFile(path.join(root, ...damaged.path), bytes);
      const opened = vi.mocked(fsp.open);
      opened.mockClear();
      const have = await checkExisting(root, meta, { workers: 0 });
      const bad = Math.floor((damaged.offset + 7) / 4096);
      expect([...Array(meta.pieceCount).keys()].filter((i) => !have.has(i))).toEqual([bad]);
      const fileOpens = opened.mock.calls.filter((c) => String(c[0]).startsWith(root + path.sep) && (Number(c[1]) & constants.O_DIRECTORY) === 0);
      expect(fileOpens.length).toBeLessThan(5); // the usual way: an open for each of the 300 files
    });
  });
});
