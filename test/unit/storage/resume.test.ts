import { mkdir, open, readFile, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { DiskError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { partFileName } from '../../../src/metainfo/selection.js';
import { isResumeFileName, loadResume, removeResume, resumeFileName, saveResume } from '../../../src/storage/resume.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { bitfieldOf, bits, makePaddedTorrent, makeTorrent, withTempDir, writeAll } from './fixture.js';

const PIECE = 1024;


/** Pieces [0, 3) are file 0, [3, 5) file 1, [5, 8) file 2; piece 2 and piece 4 straddle two files. */
const LENGTHS = [2.5 * PIECE, 2 * PIECE, 3.5 * PIECE - 100];

describe('fast resume records', () => {
  it('unchanged files: exactly the recorded pieces are vouched for', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      const have = bitfieldOf('11011011');
      await saveResume(root, meta, have, partFileName(meta));
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11011011');
    });
  });

  it('a file written since (even with its mtime put back) loses every piece it touches, and only those', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
      const f1 = path.join(root, ...meta.files[1]!.path);
      const before = await stat(f1);
      const fh = await open(f1, 'r+');
      await fh.write(Buffer.from([0xff]), 0, 1, 10);
      await fh.close();
      await utimes(f1, before.atime, before.mtime); // touch -r: ctime still moves
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11000111');
    });
  });

  it('a file deleted, truncated or replaced loses its pieces', async () => {
    for (const change of ['delete', 'truncate', 'replace'] as const) {
      await withTempDir(async (root) => {
        const { meta, data } = makeTorrent(LENGTHS, PIECE);
        await writeAll(root, meta, data);
        await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
        const f2 = path.join(root, ...meta.files[2]!.path);
        if (change === 'delete') await unlink(f2);
        if (change === 'truncate') await truncate(f2, 10);
        if (change === 'replace') {
          await unlink(f2);
          await writeFile(f2, data.subarray(meta.files[2]!.offset, meta.files[2]!.offset + meta.files[2]!.length));
        }
        expect(bits(await loadResume(root, meta, partFileName(meta))), change).toBe('11110000');
      });
    }
  });

  it("an absent file's share comes from the part file: vouched for only while the part file is unchanged", async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await unlink(path.join(root, ...meta.files[1]!.path)); // unselected, its edges in the part file
      const part = path.join(root, partFileName(meta));
      await writeFile(part, data.subarray(0, meta.totalLength));
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11111111');
      await writeFile(part, Buffer.alloc(10), { flag: 'a' });
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11000111');
      await unlink(part);
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11000111');
    });
  });

  it('padding files are never looked for on disk', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makePaddedTorrent([1500, 3000, 700], PIECE);
      await writeAll(root, meta, data);
      const all = Bitfield.full(meta.pieceCount);
      await saveResume(root, meta, all, partFileName(meta));
      expect((await loadResume(root, meta, partFileName(meta)))?.count).toBe(meta.pieceCount);
    });
  });

  it('no record, a garbage record, another torrent\'s or an oversized one: nothing is vouched for', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      const load = (): Promise<Bitfield | undefined> => loadResume(root, meta, partFileName(meta));
      expect(await load()).toBeUndefined();
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
      const file = path.join(root, resumeFileName(meta));
      const good = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      const variants: [string, string][] = [
        ['not JSON', '{"format":'],
        ['not an object', '[1,2]'],
        ['another torrent', JSON.stringify({ ...good, infoHash: 'ab'.repeat(20) })],
        ['another piece count', JSON.stringify({ ...good, pieceCount: 9 })],
        ['another version', JSON.stringify({ ...good, version: 2 })],
        ['a long bitfield', JSON.stringify({ ...good, have: 'AAAA' })],
        ['an empty bitfield', JSON.stringify({ ...good, have: '' })],
        ['not base64', JSON.stringify({ ...good, have: '!!' })],
        ['too few files', JSON.stringify({ ...good, files: [] })],
        ['a stamp that is not one', JSON.stringify({ ...good, files: [['1', '2', '3'], null, null] })],
        ['oversized', JSON.stringify({ ...good, pad: 'x'.repeat(1 << 20) })],
      ];
      for (const [why, text] of variants) {
        await writeFile(file, text);
        expect(await load(), why).toBeUndefined();
      }
    });
  });

  it('spare bits set in the bitfield: not a record', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([5 * PIECE], PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, bitfieldOf('11111'), partFileName(meta));
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11111');
      const file = path.join(root, resumeFileName(meta));
      const record = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...record, have: Buffer.from([0xff]).toString('base64') }));
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
    });
  });

  it('a record that is a symlink is never followed: no record on load, refused on save; a data file that is one is a disk error, as when checking', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const elsewhere = path.join(root, 'elsewhere');
      await mkdir(elsewhere);
      await writeAll(elsewhere, meta, data);
      await saveResume(elsewhere, meta, bitfieldOf('11111111'), partFileName(meta));
      await writeAll(root, meta, data);
      await symlink(path.join(elsewhere, resumeFileName(meta)), path.join(root, resumeFileName(meta)));
      // the record it points at vouches for every piece, and its stamps match: still not read
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
      await expect(saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta))).rejects.toBeInstanceOf(DiskError);
      await unlink(path.join(root, resumeFileName(meta)));
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
      const f0 = path.join(root, ...meta.files[0]!.path);
      await unlink(f0);
      await symlink(path.join(elsewhere, ...meta.files[0]!.path), f0);
      await expect(loadResume(root, meta, partFileName(meta))).rejects.toBeInstanceOf(DiskError);
    });
  });

  it('saving replaces the record whole (no temporary left); removing it is idempotent', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, bitfieldOf('10000000'), partFileName(meta));
      await saveResume(root, meta, bitfieldOf('10000001'), partFileName(meta));
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('10000001');
      const { readdir } = await import('node:fs/promises');
      expect((await readdir(root)).filter((n) => n.startsWith('.'))).toEqual([resumeFileName(meta)]);
      await removeResume(root, meta);
      await removeResume(root, meta);
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
    });
  });

  it('names: only the exact record and temporary shapes', () => {
    expect(isResumeFileName(`.${'a1'.repeat(20)}.tt-resume`)).toBe(true);
    expect(isResumeFileName(`.${'a1'.repeat(20)}.tt-resume.tmp`)).toBe(true);
    for (const n of ['.tt-resume', `${'a1'.repeat(20)}.tt-resume`, `.${'A1'.repeat(20)}.tt-resume`, `.${'a1'.repeat(20)}.tt-resume.x`]) expect(isResumeFileName(n), n).toBe(false);
  });

  it('a torrent named like a resume record (or its temporary) is never written', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent([PIECE], PIECE);
      for (const name of [`.${'cd'.repeat(20)}.tt-resume`, `.${'cd'.repeat(20)}.tt-resume.tmp`]) {
        const crafted: Metainfo = { ...meta, name, files: meta.files.map((f) => ({ ...f, path: [name, ...f.path.slice(1)] })) };
        await expect(TorrentStorage.open(root, crafted, { mode: 'readwrite' })).rejects.toThrow(/resume record/);
      }
    });
  });
});
