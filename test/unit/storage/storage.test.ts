import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import { PieceGeometry } from '../../../src/core/geometry.js';
import { toDiskError } from '../../../src/storage/disk-error.js';
import { TorrentStorage, type FileOpener } from '../../../src/storage/storage.js';
import { DirectWriteMonitor } from '../../../src/storage/direct-io.js';
import { PieceBuffers } from '../../../src/storage/piece-buffers.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { directSupported } from '../../helpers/direct-io.js';
import { makePaddedTorrent, makeTorrent, withTempDir } from './fixture.js';

function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function pieceOf(data: Buffer, g: PieceGeometry, i: number): Buffer {
  return data.subarray(g.pieceOffset(i), g.pieceOffset(i) + g.pieceSize(i));
}

// odd sizes; with 5000-byte pieces several pieces span 3+ files (1, 7, 3 byte files; empty files)
const LENGTHS = [1, 16385, 0, 7, 40000, 3, 0, 9999, 1];

describe('TorrentStorage round trip', () => {
  for (const [pieceLength, maxOpenFiles] of [[5000, 64], [32768, 64], [5000, 2]] as const) {
    it(`writes pieces in random order and reads the same bytes (piece ${pieceLength}, ${maxOpenFiles} handles)`, async () => {
      await withTempDir(async (root) => {
        const { meta, data } = makeTorrent(LENGTHS, pieceLength);
        const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
        const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', maxOpenFiles });
        for (const i of shuffled(meta.pieceCount, pieceLength)) await storage.writePiece(i, Buffer.from(pieceOf(data, g, i)));
        expect(storage.openFiles).toBeLessThanOrEqual(maxOpenFiles);
        for (let i = 0; i < meta.pieceCount; i++) expect((await storage.readPiece(i))?.equals(pieceOf(data, g, i))).toBe(true);
        const begin = 1000;
        expect((await storage.readBlock(1, begin, 3000)).equals(data.subarray(pieceLength + begin, pieceLength + begin + 3000))).toBe(true);
        await storage.close();
        for (const file of meta.files) {
          const onDisk = await readFile(path.join(root, ...file.path));
          expect(onDisk.equals(data.subarray(file.offset, file.offset + file.length))).toBe(true);
        }
      });
    });
  }

  it('writes concurrently without losing bytes', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, 3000);
      const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', maxOpenFiles: 3 });
      await Promise.all(shuffled(meta.pieceCount, 7).map((i) => storage.writePiece(i, Buffer.from(pieceOf(data, g, i)))));
      const all = await Promise.all(Array.from({ length: meta.pieceCount }, (_, i) => storage.readPiece(i)));
      expect(Buffer.concat(all.map((b) => b!)).equals(data)).toBe(true);
      await storage.close();
    });
  });

  it('refuses a piece of the wrong size or index', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent([100], 64);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await expect(storage.writePiece(1, Buffer.alloc(64))).rejects.toThrow(RangeError); // last piece is 36 bytes
      await expect(storage.writePiece(2, Buffer.alloc(36))).rejects.toThrow(RangeError);
      await expect(storage.readBlock(1, 30, 10)).rejects.toThrow(RangeError);
      await storage.close();
    });
  });
});

describe('stamps (what a resume record expects of each file)', () => {
  /** An opener whose handles count their stat() calls. */
  function counting(): { openFile: FileOpener; stats: () => number } {
    let stats = 0;
    const openFile: FileOpener = async (file, flags) => {
      const fh = await open(file, flags, 0o644);
      const real = fh.stat.bind(fh);
      fh.stat = ((opts?: { bigint?: boolean }) => {
        stats++;
        return real(opts as { bigint: true });
      }) as typeof fh.stat;
      return fh;
    };
    return { openFile, stats: () => stats };
  }

  async function current(root: string, meta: Metainfo, i: number): Promise<string[]> {
    const st = await stat(path.join(root, ...meta.files[i]!.path), { bigint: true });
    return [String(st.size), String(st.mtimeNs), String(st.ctimeNs), String(st.ino)];
  }

  it("after flushStamps each written file's stamp is its state after tt's last write; many writes share one fstat", async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([300_000, 7, 1], 5000);
      const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
      const counter = counting();
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', openFile: counter.openFile });
      const atCreation = counter.stats(); // one per created file
      for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, Buffer.from(pieceOf(data, g, i)));
      await storage.flushStamps();
      for (let i = 0; i < meta.files.length; i++) expect(storage.stamps().get(i)).toEqual(await current(root, meta, i));
      // 61 piece writes, 63 file writes: a stamp each would be 63 fstats; deferred, a few per file
      expect(counter.stats() - atCreation).toBeLessThanOrEqual(meta.files.length * 3);
      await storage.close();
    });
  });

  it('small files whose handles the cache needs back are stamped through the handle that wrote them, never opened again for it', async () => {
    await withTempDir(async (root) => {
      // 120 files of 100 B in 2 KiB pieces (20 files a piece), 4 descriptors: each piece's writes wait for room
      const { meta, data } = makeTorrent(Array.from({ length: 120 }, () => 100), 2048);
      const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
      const opens = new Map<string, number>();
      const counter = counting();
      const openFile: FileOpener = async (file, flags) => {
        opens.set(file, (opens.get(file) ?? 0) + 1);
        return counter.openFile(file, flags);
      };
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', openFile, maxOpenFiles: 4 });
      const atStart = new Map(opens);
      await Promise.all(Array.from({ length: meta.pieceCount }, (_, i) => storage.writePiece(i, Buffer.from(pieceOf(data, g, i)))));
      await storage.flushStamps();
      for (let i = 0; i < meta.files.length; i++) expect(storage.stamps().get(i)).toEqual(await current(root, meta, i));
      // one open per file to write it; taking its stamp by opening it again made two
      const since = [...opens].map(([file, n]) => n - (atStart.get(file) ?? 0));
      expect(Math.max(...since)).toBe(1);
      expect(since.reduce((a, b) => a + b, 0)).toBe(meta.files.length);
      await storage.close();
    });
  });

  it('a write is stamped by itself shortly after (no flush), so a later change by another program shows', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([20_000], 5000);
      const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, Buffer.from(pieceOf(data, g, i)));
      const ours = await current(root, meta, 0);
      await new Promise((r) => setTimeout(r, 150));
      expect(storage.stamps().get(0)).toEqual(ours);
      await writeFile(path.join(root, ...meta.files[0]!.path), data.subarray(0, 20_000)); // same bytes, new ctime
      await new Promise((r) => setTimeout(r, 10));
      await storage.flushStamps(); // nothing pending: the foreign write is not taken as tt's
      expect(storage.stamps().get(0)).toEqual(ours);
      expect(await current(root, meta, 0)).not.toEqual(ours);
      await storage.close();
    });
  });
});

describe('BEP 47 padding files', () => {
  it('are never created; pieces across them round-trip, their bytes read as zeros; read mode needs no pad file', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makePaddedTorrent([5000, 3000, 7000], 4096);
      expect(meta.files.filter((f) => f.padding)).toHaveLength(2);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, data.subarray(i * 4096, (i + 1) * 4096));
      await expect(stat(path.join(root, 'T', '.pad'))).rejects.toMatchObject({ code: 'ENOENT' });
      for (const file of meta.files.filter((f) => !f.padding)) {
        expect((await readFile(path.join(root, ...file.path))).equals(data.subarray(file.offset, file.offset + file.length))).toBe(true);
      }
      await storage.close();
      const reader = await TorrentStorage.open(root, meta, { mode: 'read' });
      for (let i = 0; i < meta.pieceCount; i++) expect((await reader.readPiece(i))?.equals(data.subarray(i * 4096, (i + 1) * 4096)), `piece ${i}`).toBe(true);
      const pad = meta.files.find((f) => f.padding)!;
      const piece = Math.floor(pad.offset / 4096);
      const block = await reader.readBlock(piece, pad.offset % 4096, pad.length);
      expect(block.equals(Buffer.alloc(pad.length))).toBe(true);
      await reader.close();
    });
  });
});

describe('TorrentStorage.open', () => {
  it('creates folders and every file (zero-length too) without pre-filling them', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent(LENGTHS, 5000);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      for (const file of meta.files) expect((await stat(path.join(root, ...file.path))).size).toBe(0);
      await storage.close();
    });
  });

  it("never truncates existing data within the torrent's length; only what lies past a file's end is cut (longer-files.test.ts)", async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent([10, 20], 8);
      await mkdir(path.join(root, 'T'));
      await writeFile(path.join(root, 'T', 'f0.bin'), 'partial');
      await writeFile(path.join(root, 'T', 'f1.bin'), 'x'.repeat(50));
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      await storage.close();
      expect(await readFile(path.join(root, 'T', 'f0.bin'), 'utf8')).toBe('partial');
      expect(await readFile(path.join(root, 'T', 'f1.bin'), 'utf8')).toBe('x'.repeat(20));
    });
  });

  it('read mode creates nothing; missing or short files read as missing', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([10, 20], 8);
      const storage = await TorrentStorage.open(root, meta, { mode: 'read' });
      expect(await storage.readPiece(0)).toBeUndefined();
      await expect(storage.readBlock(0, 0, 8)).rejects.toThrow(/missing/);
      await expect(stat(path.join(root, 'T'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(storage.writePiece(0, data.subarray(0, 8))).rejects.toBeInstanceOf(DiskError);
      // now the first file appears, but the second is short
      await mkdir(path.join(root, 'T'));
      await writeFile(path.join(root, 'T', 'f0.bin'), data.subarray(0, 10));
      await writeFile(path.join(root, 'T', 'f1.bin'), data.subarray(10, 15));
      expect((await storage.readPiece(0))?.equals(data.subarray(0, 8))).toBe(true);
      expect(await storage.readPiece(1)).toBeUndefined(); // bytes 8..16 cross into the short file
      await expect(storage.readBlock(1, 0, 8)).rejects.toThrow(/shorter than expected/);
      await storage.close();
    });
  });

  it('reports a data file removed while seeding', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([10, 20], 8);
      const writer = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      for (let i = 0; i < meta.pieceCount; i++) await writer.writePiece(i, data.subarray(i * 8, i * 8 + (i === 3 ? 6 : 8)));
      await writer.close();
      const storage = await TorrentStorage.open(root, meta, { mode: 'read', maxOpenFiles: 1 });
      expect(await storage.readPiece(3)).toBeDefined();
      await rm(path.join(root, 'T', 'f0.bin'));
      expect(await storage.readPiece(0)).toBeUndefined(); // the handle to f0 was evicted by f1's
      await storage.close();
      await expect(storage.readPiece(3)).rejects.toThrow(/closed/);
    });
  });
});

/** Write every piece of `data` from aligned pool buffers, in a shuffled order, a few at a time. */
async function writeAllFromPool(storage: TorrentStorage, meta: Metainfo, data: Buffer): Promise<void> {
  const g = new PieceGeometry(meta.pieceLength, meta.totalLength);
  const pool = new PieceBuffers(meta.pieceLength);
  const order = shuffled(meta.pieceCount, 5);
  for (let at = 0; at < order.length; at += 4) {
    await Promise.all(
      order.slice(at, at + 4).map(async (i) => {
        const buf = pool.take(g.pieceSize(i));
        pieceOf(data, g, i).copy(buf);
        await storage.writePiece(i, buf);
        pool.give(buf);
      }),
    );
  }
}

async function expectFilesMatch(root: string, meta: Metainfo, data: Buffer): Promise<void> {
  for (const file of meta.files) {
    const onDisk = await readFile(path.join(root, ...file.path));
    expect(onDisk.equals(data.subarray(file.offset, file.offset + file.length))).toBe(true);
  }
}

describe('direct writes (O_DIRECT)', () => {
  const PIECE = 64 * 1024;

  it('writes aligned pieces with O_DIRECT and every byte lands, in one file and across unaligned files', async () => {
    await withTempDir(async (root) => {
      const supported = await directSupported(root);
      // one file (whole pieces aligned, short last piece), then odd file sizes where only some runs align
      const cases: [number[], number][] = [
        [[20 * PIECE + 1234], 20 * PIECE], // the 1234-byte last piece is less than a block
        // f0 aligned; f1 (5000 bytes) starts aligned but is small (SMALL_FILE_BYTES: written on the small-file
        // worker, page cache); later files start at offsets that disagree with their place in the piece buffer
        // modulo 4096: page cache only
        [[PIECE * 3, 5000, 4096 * 7, 1, PIECE * 2 + 100, 0, 9000], 3 * PIECE],
      ];
      for (const [lengths, expectDirect] of cases) {
        const { meta, data } = makeTorrent(lengths, PIECE);
        const dir = path.join(root, String(lengths.length));
        const storage = await TorrentStorage.open(dir, meta, { mode: 'readwrite', directWrites: true });
        await writeAllFromPool(storage, meta, data);
        const stats = storage.directWrites!;
        for (let i = 0; i < meta.pieceCount; i++) expect((await storage.readPiece(i))?.equals(pieceOf(data, new PieceGeometry(PIECE, meta.totalLength), i))).toBe(true);
        await storage.close();
        await expectFilesMatch(dir, meta, data);
        if (supported) {
          expect(stats.offReason).toBeUndefined();
          expect(stats.bytes).toBe(expectDirect);
        } else {
          expect(stats.bytes).toBe(0);
          expect(stats.offReason).toMatch(/refuses O_DIRECT/);
        }
      }
    });
  });

  it('plain (unaligned) buffers and directWrites off go through the page cache only', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([8 * PIECE], PIECE);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', directWrites: true });
      const g = new PieceGeometry(PIECE, meta.totalLength);
      for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, Buffer.from(pieceOf(data, g, i)));
      expect(storage.directWrites!.bytes).toBe(0);
      await storage.close();
      await expectFilesMatch(root, meta, data);
      const off = await TorrentStorage.open(path.join(root, 'off'), meta, { mode: 'readwrite' });
      expect(off.directWrites).toBeUndefined();
      await off.close();
    });
  });

  /** Write every piece with `openFile` injecting an O_DIRECT fault: direct writes go off for good, no byte is lost. */
  async function expectEinvalFallback(fileSizes: number[], openFile: FileOpener): Promise<void> {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(fileSizes, PIECE);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', directWrites: true, openFile });
      await writeAllFromPool(storage, meta, data);
      expect(storage.directWrites).toEqual({ bytes: 0, offReason: 'the file system refuses O_DIRECT (EINVAL)' });
      await storage.close();
      await expectFilesMatch(root, meta, data);
    });
  }

  it('falls back to the page cache when the file system refuses O_DIRECT (EINVAL), losing nothing', async () => {
    let directOpens = 0;
    await expectEinvalFallback([6 * PIECE, 3 * PIECE], (file, flags) => {
      if ((flags & constants.O_DIRECT) === 0) return open(file, flags, 0o644);
      directOpens++;
      return Promise.reject(Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' }));
    });
    expect(directOpens).toBeGreaterThan(0);
    expect(directOpens).toBeLessThanOrEqual(4); // the writes already in flight when the first one failed, then no more tries
  });

  it('a direct write failing with EINVAL is redone through the page cache', async () => {
    await expectEinvalFallback([8 * PIECE], async (file, flags) => {
      const fh = await open(file, flags, 0o644);
      if ((flags & constants.O_DIRECT) === 0) return fh;
      // e.g. a device whose logical blocks are larger than 4096
      const einval = Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' });
      return new Proxy(fh, {
        get: (t, k) => {
          if (k === 'write') return () => Promise.reject(einval);
          const v: unknown = Reflect.get(t, k, t);
          return typeof v === 'function' ? v.bind(t) : v;
        },
      });
    });
  });

  it('other direct write errors are reported, not hidden by a fallback (real ENOSPC)', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([4 * PIECE], PIECE);
      const storage = await TorrentStorage.open(root, meta, {
        mode: 'readwrite',
        directWrites: true,
        openFile: (file, flags) => ((flags & constants.O_DIRECT) !== 0 ? open('/dev/full', constants.O_RDWR) : open(file, flags, 0o644)),
      });
      const buf = new PieceBuffers(PIECE).take(PIECE);
      data.copy(buf, 0, 0, PIECE);
      await expect(storage.writePiece(0, buf)).rejects.toThrow(/disk full \(ENOSPC\)/);
      await storage.close();
    });
  });

  it('a disk too slow for direct writes is switched to the page cache, saying why', async () => {
    if (!(await withTempDir(directSupported))) {
      throw new Error('this test needs a temp folder on a file system with O_DIRECT (ext4, xfs, btrfs, tmpfs on Linux >= 6.6)');
    }
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([16 * PIECE], PIECE);
      // judge after two pieces, against a rate no disk reaches
      const directMonitor = new DirectWriteMonitor({ windowBytes: 2 * PIECE, minRate: Number.MAX_SAFE_INTEGER });
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', directWrites: true, directMonitor });
      await writeAllFromPool(storage, meta, data);
      const stats = storage.directWrites!;
      expect(stats.offReason).toMatch(/MiB\/s with O_DIRECT, below .*: the page cache serves it better/);
      expect(stats.bytes).toBeGreaterThanOrEqual(2 * PIECE);
      expect(stats.bytes).toBeLessThanOrEqual(4 * PIECE); // the first batch of four at most
      await storage.close();
      await expectFilesMatch(root, meta, data);
    });
  });
});

describe('disk errors', () => {
  it('maps a full disk (real ENOSPC from /dev/full) to a DiskError naming the file', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([10, 20], 16);
      const victim = path.join(root, 'T', 'f1.bin');
      const storage = await TorrentStorage.open(root, meta, {
        mode: 'readwrite',
        openFile: (file, flags) => (file === victim ? open('/dev/full', constants.O_RDWR) : open(file, flags, 0o644)),
      });
      await storage.writePiece(0, data.subarray(0, 16)).then(
        () => expect.unreachable(),
        (err: unknown) => {
          expect(err).toBeInstanceOf(DiskError);
          expect((err as DiskError).message).toContain('disk full');
          expect((err as DiskError).message).toContain(victim);
          expect((err as DiskError).syscallCode).toBe('ENOSPC');
        },
      );
      await storage.close();
    });
  });

  it('maps a parent that is a regular file (real ENOTDIR) to a DiskError', async () => {
    await withTempDir(async (root) => {
      const blocker = path.join(root, 'blocker');
      await writeFile(blocker, 'x');
      const { meta } = makeTorrent([10], 16);
      await expect(TorrentStorage.open(blocker, meta, { mode: 'readwrite' })).rejects.toThrow(/a parent folder is a file \(ENOTDIR\)/);
    });
  });

  it('maps permission and read-only errors (injected: the tests run as root)', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([10, 6], 16); // one piece over both files
      const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      await expect(TorrentStorage.open(root, meta, { mode: 'readwrite', openFile: () => Promise.reject(eacces) })).rejects.toThrow(
        /cannot create ".*f[01]\.bin": not writable/, // created a few at a time: whichever failed first
      );
      // the files exist (made by a first run); opening them for writing is denied (e.g. permissions
      // changed under us): open() holds them read-only, and the write that needs one says so
      await (await TorrentStorage.open(root, meta, { mode: 'readwrite' })).close();
      // (O_CREAT goes through: the kernel says EEXIST for a file that is there before it checks write permission)
      const readOnly = (file: string, flags: number) =>
        (flags & constants.O_CREAT) !== 0 || (flags & (constants.O_WRONLY | constants.O_RDWR)) === 0 ? open(file, flags, 0o644) : Promise.reject(eacces);
      const denied = await TorrentStorage.open(root, meta, { mode: 'readwrite', openFile: readOnly });
      await expect(denied.writePiece(0, data)).rejects.toThrow(/cannot write ".*f[01]\.bin": not writable \(permission denied\) \(EACCES\)/);
      expect(await denied.readPiece(0)).toBeUndefined(); // still readable: empty, so not the piece
      await denied.close();
      // not even readable: open() says so
      const unreadable = (file: string, flags: number) => ((flags & constants.O_CREAT) !== 0 ? open(file, flags, 0o644) : Promise.reject(eacces));
      await expect(TorrentStorage.open(root, meta, { mode: 'readwrite', openFile: unreadable })).rejects.toThrow(/cannot read ".*f[01]\.bin": not readable \(permission denied\) \(EACCES\)/);
    });
    const erofs = toDiskError('write', '/x/y', Object.assign(new Error('EROFS'), { code: 'EROFS' }));
    expect(erofs.message).toBe('cannot write "/x/y": not writable (read-only file system) (EROFS)');
    expect(erofs.code).toBe('DISK');
    expect(toDiskError('write', '/x/y', new Error('odd')).message).toBe('cannot write "/x/y": odd');
  });

  it('a read-only file system is reported as not writable, not as missing (real EROFS: tmpfs remounted ro, needs root)', async () => {
    await withTempDir(async (dir) => {
      const ro = path.join(dir, 'ro');
      await mkdir(ro);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', ro], { stdio: 'pipe' });
      } catch (err) {
        throw new Error(`mount -t tmpfs is not permitted here (needs root); this test cannot run: ${(err as Error).message}`);
      }
      try {
        execFileSync('mount', ['-o', 'remount,ro', ro], { stdio: 'pipe' });
        const { meta } = makeTorrent([10, 20], 16);
        // Node 20's recursive mkdir alone says ENOENT here ("missing")
        await expect(TorrentStorage.open(ro, meta, { mode: 'readwrite' })).rejects.toThrow(/cannot create ".*[/]ro[/]T": not writable \(read-only file system\) \(EROFS\)/);
        await expect(TorrentStorage.open(path.join(ro, 'out'), meta, { mode: 'readwrite' })).rejects.toThrow(/not writable .*EROFS/);
      } finally {
        execFileSync('umount', [ro]);
      }
    });
  });
});
