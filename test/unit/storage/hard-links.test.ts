/**
 * Nothing is written outside the download folder through a hard link
 * (README, Safety): `ln victim out/T/f0.bin` before a download used to have
 * the download's pieces written into `victim`. Before the first write into a
 * file with other hard links storage copies it to a file of its own (synced,
 * renamed into place) and writes only that; reading a hard-linked file
 * (checking, seeding, a complete file) copies nothing.
 */
import { link, lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { checkExisting } from '../../../src/storage/check.js';
import { PieceBuffers } from '../../../src/storage/piece-buffers.js';
import { TorrentStorage, adoptTempName } from '../../../src/storage/storage.js';
import { directSupported } from '../../helpers/direct-io.js';
import { bits, makeTorrent, withTempDir } from './fixture.js';

function pieceOf(meta: Metainfo, data: Buffer, p: number): Buffer {
  return Buffer.from(data.subarray(p * meta.pieceLength, Math.min((p + 1) * meta.pieceLength, meta.totalLength)));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** `root/T/f0.bin` as a hard link of `parent/victim`, which holds `bytes`. */
async function linkedVictim(parent: string, root: string, bytes: Buffer): Promise<{ victim: string; inside: string }> {
  const victim = path.join(parent, 'victim');
  const inside = path.join(root, 'T', 'f0.bin');
  await writeFile(victim, bytes);
  await mkdir(path.dirname(inside), { recursive: true });
  await link(victim, inside);
  return { victim, inside };
}

describe('a hard link in the download folder', () => {
  it('is copied to a file of its own before the first write: the outside file keeps its bytes, the download completes', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'out');
      const { meta, data } = makeTorrent([5000, 3000], 1024);
      // a partial copy: its first two pieces right, the rest someone's own bytes
      const victimBytes = Buffer.concat([data.subarray(0, 2048), Buffer.alloc(2952, 0x42)]);
      const { victim, inside } = await linkedVictim(parent, root, victimBytes);
      const before = await stat(victim);
      expect(bits(await checkExisting(root, meta, { workers: 0 }))).toBe('11000000');
      const notices: string[] = [];
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', onNotice: (m) => notices.push(m) });
      await Promise.all(range(2, meta.pieceCount).map((p) => storage.writePiece(p, pieceOf(meta, data, p))));
      expect((await readFile(victim)).equals(victimBytes)).toBe(true);
      await storage.assertFilesInPlace(); // the copy is the file now
      await storage.close();
      expect((await stat(victim)).mtimeMs).toBe(before.mtimeMs);
      expect((await stat(victim)).nlink).toBe(1);
      const now = await stat(inside);
      expect(now.nlink).toBe(1);
      expect(now.ino).not.toBe(before.ino);
      expect((await readFile(inside)).equals(data.subarray(0, 5000))).toBe(true);
      expect(bits(await checkExisting(root, meta, { workers: 0 }))).toBe('11111111');
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatch(/f0\.bin" had 1 other hard link\(s\): copied it to a file of its own before writing/);
      expect(await lstat(path.join(root, 'T', adoptTempName(meta, 0))).catch(() => 'gone')).toBe('gone');
    });
  });

  it('with O_DIRECT writes too (the aligned part of each piece goes through a second handle)', async () => {
    await withTempDir(async (parent) => {
      if (!(await directSupported(parent))) throw new Error('this test needs a temp folder on a file system with O_DIRECT (ext4, xfs, btrfs, tmpfs on Linux >= 6.6)');
      const root = path.join(parent, 'out');
      const PIECE = 65536;
      const { meta, data } = makeTorrent([4 * PIECE + 100, PIECE], PIECE);
      const victimBytes = Buffer.alloc(4 * PIECE + 100, 0x42);
      const { victim, inside } = await linkedVictim(parent, root, victimBytes);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', directWrites: true });
      const pool = new PieceBuffers(PIECE);
      await Promise.all(
        range(0, meta.pieceCount).map(async (p) => {
          const piece = pieceOf(meta, data, p);
          const buf = pool.take(piece.length);
          piece.copy(buf);
          await storage.writePiece(p, buf);
        }),
      );
      expect(storage.directWrites?.bytes).toBeGreaterThan(0);
      await storage.close();
      expect((await readFile(victim)).equals(victimBytes)).toBe(true);
      expect((await readFile(inside)).equals(data.subarray(0, 4 * PIECE + 100))).toBe(true);
      expect((await stat(inside)).nlink).toBe(1);
    });
  });

  it('a complete hard-linked file (a media library) is only read: checked, seeded, found in place, never copied', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'out');
      const { meta, data } = makeTorrent([5000, 3000], 1024);
      const { victim, inside } = await linkedVictim(parent, root, data.subarray(0, 5000));
      await writeFile(path.join(root, 'T', 'f1.bin'), data.subarray(5000));
      const ino = (await stat(victim)).ino;
      expect(bits(await checkExisting(root, meta, { workers: 0 }))).toBe('11111111');
      const notices: string[] = [];
      const download = await TorrentStorage.open(root, meta, { mode: 'readwrite', onNotice: (m) => notices.push(m) });
      for (let p = 0; p < meta.pieceCount; p++) expect((await download.readPiece(p))?.equals(pieceOf(meta, data, p))).toBe(true);
      await download.assertFilesInPlace();
      await download.close();
      const seed = await TorrentStorage.open(root, meta, { mode: 'read' });
      expect((await seed.readBlock(1, 0, 1024)).equals(data.subarray(1024, 2048))).toBe(true);
      await seed.close();
      expect(notices).toEqual([]);
      expect((await stat(inside)).ino).toBe(ino);
      expect((await stat(inside)).nlink).toBe(2);
    });
  });

  it('a hard-linked part file is copied too before its first write', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'out');
      const { meta, data } = makeTorrent([1500, 1500, 1500], 1024);
      const selection = new FileSelection(meta, [true, false, true]);
      const victim = path.join(parent, 'victim');
      await writeFile(victim, Buffer.alloc(100, 0x42));
      await mkdir(root, { recursive: true });
      await link(victim, path.join(root, selection.partFileName));
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection });
      for (const p of selection.wanted.indices()) await storage.writePiece(p, pieceOf(meta, data, p));
      for (const p of selection.wanted.indices()) expect((await storage.readPiece(p))?.equals(pieceOf(meta, data, p))).toBe(true);
      await storage.close();
      expect((await readFile(victim)).equals(Buffer.alloc(100, 0x42))).toBe(true);
      expect((await stat(path.join(root, selection.partFileName))).nlink).toBe(1);
    });
  });

  it('when the copy cannot be made (a symlink planted at its temporary name) the write fails saying why, and nothing outside changes', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'out');
      const { meta, data } = makeTorrent([5000, 3000], 1024);
      const victimBytes = Buffer.alloc(5000, 0x42);
      const { victim } = await linkedVictim(parent, root, victimBytes);
      const bait = path.join(parent, 'bait');
      await writeFile(bait, 'bait');
      await symlink(bait, path.join(root, 'T', adoptTempName(meta, 0)));
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      const err = await storage.writePiece(0, pieceOf(meta, data, 0)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DiskError);
      expect((err as DiskError).message).toMatch(/^cannot write ".*[/]out[/]T[/]f0\.bin": it has 1 other hard link\(s\), and copying it to a file of its own failed: .*symbolic link/);
      await storage.close();
      expect((await readFile(victim)).equals(victimBytes)).toBe(true);
      expect(await readFile(bait, 'utf8')).toBe('bait');
    });
  });
});
