/**
 * TorrentStorage.close({ discardUntouched }): a download that ends with
 * nothing verified takes away the files and folders it created and never
 * wrote, and nothing else (files and folders that were there, files it wrote).
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { mkdirp } from '../../../src/storage/mkdirp.js';
import { makeTorrent, withTempDir } from './fixture.js';

describe('close({ discardUntouched })', () => {
  it('a fresh output folder: every file and folder it made is gone, the output folder too', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000, 0, 3000], 16_384);
      const out = path.join(dir, 'new', 'out');
      const storage = await TorrentStorage.open(out, meta, { mode: 'readwrite' });
      expect((await readdir(path.join(out, 'T'))).sort()).toEqual(['f0.bin', 'f1.bin', 'f2.bin']);
      await storage.close({ discardUntouched: true });
      expect(await readdir(dir)).toEqual([]);
    }));

  it('keeps what was there before (the output folder, another file, a file of the torrent found) and what it wrote', () =>
    withTempDir(async (dir) => {
      const { meta, data } = makeTorrent([20_000, 3000], 16_384);
      await mkdir(path.join(dir, 'T'), { recursive: true });
      await writeFile(path.join(dir, 'unrelated.txt'), 'mine');
      await writeFile(path.join(dir, 'T', 'f1.bin'), ''); // found, not created
      const storage = await TorrentStorage.open(dir, meta, { mode: 'readwrite' });
      await storage.writePiece(0, data.subarray(0, 16_384)); // f0.bin written
      await storage.close({ discardUntouched: true });
      expect((await readdir(dir)).sort()).toEqual(['T', 'unrelated.txt']);
      expect((await readdir(path.join(dir, 'T'))).sort()).toEqual(['f0.bin', 'f1.bin']);
    }));

  it('without it (the default), everything stays', () =>
    withTempDir(async (dir) => {
      const { meta } = makeTorrent([1000], 16_384);
      const out = path.join(dir, 'out');
      const storage = await TorrentStorage.open(out, meta, { mode: 'readwrite' });
      await storage.close();
      expect(existsSync(path.join(out, 'T', 'f0.bin'))).toBe(true);
    }));

  it('mkdirp says which folder it created first', () =>
    withTempDir(async (dir) => {
      expect(await mkdirp(path.join(dir, 'a', 'b', 'c'))).toBe(path.join(dir, 'a'));
      expect(await mkdirp(path.join(dir, 'a', 'b'))).toBeUndefined();
    }));
});
