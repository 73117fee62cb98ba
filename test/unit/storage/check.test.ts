import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { renameSync, symlinkSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError, TtError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import { CHECK_OPEN_PARALLEL, CHECK_RUN_BYTES, checkExisting, type CheckProgress } from '../../../src/storage/check.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { mulberry32 } from '../../helpers/prng.js';
import { makePaddedTorrent, makeTorrent, openDescriptors, peakDuring, withFileIn, withTempDir } from './fixture.js';

async function writeAll(root: string, meta: Metainfo, data: Buffer): Promise<void> {
  for (const file of meta.files) {
    const p = path.join(root, ...file.path);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, data.subarray(file.offset, file.offset + file.length));
  }
}

/**
 * The expected bitfield, computed independently: hash what is really on disk, piece by piece. A
 * piece with a byte not on disk (a missing file, or one shorter than it should be) is missing
 * whatever that byte should have been: a stand-in value (0xa5 once) made the lost byte "there"
 * whenever it happened to be that value, and the check, rightly saying missing, failed the test.
 */
async function bruteForce(root: string, meta: Metainfo): Promise<string> {
  const all = Buffer.alloc(meta.totalLength);
  const absent = new Uint8Array(meta.pieceCount);
  for (const file of meta.files) {
    const bytes = await readFile(path.join(root, ...file.path)).catch(() => Buffer.alloc(0));
    const got = Math.min(bytes.length, file.length); // bytes past the file's length are ignored
    bytes.copy(all, file.offset, 0, got);
    if (got < file.length) {
      const last = Math.floor((file.offset + file.length - 1) / meta.pieceLength);
      for (let i = Math.floor((file.offset + got) / meta.pieceLength); i <= last; i++) absent[i] = 1;
    }
  }
  let bits = '';
  for (let i = 0; i < meta.pieceCount; i++) {
    const h = createHash('sha1').update(all.subarray(i * meta.pieceLength, (i + 1) * meta.pieceLength)).digest();
    bits += !absent[i] && h.equals(meta.pieces.subarray(i * 20, i * 20 + 20)) ? '1' : '0';
  }
  return bits;
}

/** `meta` with the piece hashes of `data`. */
function hashedOver(meta: Metainfo, data: Buffer): Metainfo {
  return { ...meta, pieces: makeTorrent([data.length], meta.pieceLength, data).meta.pieces };
}

function bits(b: { size: number; has(i: number): boolean }): string {
  let s = '';
  for (let i = 0; i < b.size; i++) s += b.has(i) ? '1' : '0';
  return s;
}

async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath ?? e.path, e.name);
    const s = await stat(p);
    out.push(`${p} ${s.size} ${s.mtimeMs}`);
  }
  return out.sort();
}

const LENGTHS = [1, 16385, 0, 7, 40000, 3, 0, 99999, 1, 123457];

describe('checkExisting', () => {
  for (const workers of [0, 1, 2]) {
    it(`finds every piece of a complete copy (${workers} workers)`, async () => {
      await withTempDir(async (root) => {
        const { meta, data } = makeTorrent(LENGTHS, 4096);
        await writeAll(root, meta, data);
        const have = await checkExisting(root, meta, { workers });
        expect(have.complete).toBe(true);
      });
    });
  }

  for (const workers of [0, 2]) {
    it(`returns exactly the right bitfield for a partial, garbled copy (${workers} workers)`, async () => {
      await withTempDir(async (root) => {
        const { meta, data } = makeTorrent(LENGTHS, 4096);
        await writeAll(root, meta, data);
        const dir = path.join(root, 'T');
        await rm(path.join(dir, 'f4.bin')); // a middle file missing
        await truncate(path.join(dir, 'f9.bin'), 50000); // the last file short
        const fh = await open(path.join(dir, 'f7.bin'), 'r+'); // one flipped byte in the middle of a file
        await fh.write(Buffer.from([data[meta.files[7]!.offset + 30000]! ^ 0xff]), 0, 1, 30000);
        await fh.close();
        await writeFile(path.join(dir, 'f8.bin'), Buffer.from([data[meta.files[8]!.offset]!, 1, 2, 3])); // longer than it should be: extra bytes ignored
        const expected = await bruteForce(root, meta);
        const before = await listing(root);
        const have = await checkExisting(root, meta, { workers });
        expect(bits(have)).toBe(expected);
        expect(expected).toMatch(/^1+0+1+0+1+0+$/); // sanity: the faults above really cost pieces, and not all
        expect(await listing(root)).toEqual(before); // nothing created, written or truncated
      });
    });
  }

  it('checks pieces larger than one read run (streamed), including a bad one', async () => {
    await withTempDir(async (root) => {
      const pieceLength = 9 * 1024 * 1024;
      const data = randomBytes(2 * pieceLength + 12345);
      const { meta } = makeTorrent([data.length - 100, 100], pieceLength, data);
      await writeAll(root, meta, data);
      const fh = await open(path.join(root, 'T', 'f0.bin'), 'r+');
      await fh.write(Buffer.from([data[pieceLength + 8_500_000]! ^ 1]), 0, 1, pieceLength + 8_500_000);
      await fh.close();
      expect(bits(await checkExisting(root, meta))).toBe('101');
    });
  });

  it('BEP 47 padding is zeros whether or not a pad file exists: data written by libtorrent checks complete', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makePaddedTorrent([5000, 3000, 7000], 4096);
      for (const file of meta.files.filter((f) => !f.padding)) {
        await mkdir(path.dirname(path.join(root, ...file.path)), { recursive: true });
        await writeFile(path.join(root, ...file.path), data.subarray(file.offset, file.offset + file.length));
      }
      expect(bits(await checkExisting(root, meta))).toBe('1'.repeat(meta.pieceCount));
      // a pad file with junk in it (not ours to trust) changes nothing either
      const pad = meta.files.find((f) => f.padding)!;
      await mkdir(path.dirname(path.join(root, ...pad.path)), { recursive: true });
      await writeFile(path.join(root, ...pad.path), Buffer.alloc(pad.length, 0xff));
      expect(bits(await checkExisting(root, meta))).toBe('1'.repeat(meta.pieceCount));
    });
  });

  it('reports nothing on an empty folder, and creates nothing', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent(LENGTHS, 4096);
      const have = await checkExisting(root, meta, { workers: 1 });
      expect(have.empty).toBe(true);
      expect(await readdir(root)).toEqual([]);
    });
  });

  it('reports progress up to the total, with bytes and have counts', async () => {
    await withTempDir(async (root) => {
      const data = randomBytes(20 * 1024 * 1024 + 3);
      const { meta } = makeTorrent([data.length], 256 * 1024, data);
      await writeAll(root, meta, data);
      const seen: CheckProgress[] = [];
      await checkExisting(root, meta, { workers: 2, onProgress: (p) => seen.push(p) });
      expect(seen.length).toBeGreaterThan(1);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.checked).toBeGreaterThan(seen[i - 1]!.checked);
      expect(seen.at(-1)).toEqual({ checked: meta.pieceCount, total: meta.pieceCount, have: meta.pieceCount, bytes: data.length });
    });
  });

  it('stops with INTERRUPTED when aborted', async () => {
    await withTempDir(async (root) => {
      const data = randomBytes(20 * 1024 * 1024);
      const { meta } = makeTorrent([data.length], 256 * 1024, data);
      await writeAll(root, meta, data);
      const ac = new AbortController();
      const run = checkExisting(root, meta, { signal: ac.signal, onProgress: () => ac.abort() });
      await expect(run).rejects.toBeInstanceOf(TtError);
      await expect(run).rejects.toMatchObject({ code: 'INTERRUPTED' });
    });
  });

  it('never reads through a folder swapped for a symlink while checking: DiskError, not pieces from outside', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'tt-check-swap-'));
    try {
      const root = path.join(parent, 'root');
      const outside = path.join(parent, 'outside');
      // pieces over one run are checked strictly one after another, with progress in between
      const pieceLength = CHECK_RUN_BYTES + 1;
      const made = makeTorrent([pieceLength, 1000], pieceLength);
      const meta = withFileIn(made.meta, 1, 'sub'); // T/f0.bin, T/sub/f1.bin
      await writeAll(root, meta, made.data);
      // the copy inside has the wrong piece 1 (there, so the check will open it; a file the lookups
      // found missing is never opened at all)...
      await writeFile(path.join(root, 'T', 'sub', 'f1.bin'), Buffer.alloc(1000, 7));
      await mkdir(outside);
      await writeFile(path.join(outside, 'f1.bin'), made.data.subarray(pieceLength)); // ...the bait outside has it
      const swap = (p: CheckProgress): void => {
        if (p.checked !== 1) return;
        renameSync(path.join(root, 'T', 'sub'), path.join(root, 'T', 'sub-moved'));
        symlinkSync(outside, path.join(root, 'T', 'sub'));
      };
      const err = await checkExisting(root, meta, { onProgress: swap }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskError);
      expect((err as DiskError).message).toMatch(/f1\.bin.*escapes the download folder/);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('a root that does not exist yet: every piece missing, nothing created', async () => {
    await withTempDir(async (dir) => {
      const { meta } = makeTorrent([100, 200], 64);
      const have = await checkExisting(path.join(dir, 'not-yet'), meta);
      expect(have.empty).toBe(true);
      expect(await readdir(dir)).toEqual([]);
    });
  });

  it('a root that is itself a symlink is checked normally', async () => {
    await withTempDir(async (dir) => {
      const { meta, data } = makeTorrent([100, 200], 64);
      await writeAll(path.join(dir, 'real'), meta, data);
      await symlink(path.join(dir, 'real'), path.join(dir, 'link'));
      expect((await checkExisting(path.join(dir, 'link'), meta)).complete).toBe(true);
    });
  });
});

describe('checkExisting over many small files (opened several at a time)', () => {
  const fds = openDescriptors;

  /** Runs `check`, sampling open descriptors at every turn of the event loop; returns its result and the peak above the start. */
  async function withPeakFds<T>(check: () => Promise<T>): Promise<{ result: T; extra: number }> {
    const before = fds();
    const { result, peak } = await peakDuring(fds, check);
    return { result, extra: peak - before };
  }

  /**
   * 2,000 files of 0..300 bytes, 100 to a folder: each 4 KiB piece crosses ~25 files, one check
   * run covers them all. With `lead`, a first file of that many bytes comes before them.
   */
  function manySmall(seed: number, lead?: number): { meta: Metainfo; data: Buffer } {
    const rnd = mulberry32(seed);
    const small = Array.from({ length: 2000 }, () => (rnd() < 0.05 ? 0 : 1 + Math.floor(rnd() * 300)));
    const made = makeTorrent(lead === undefined ? small : [lead, ...small], 4096);
    const files = made.meta.files.map((f, i) => ({ ...f, path: ['T', `d${Math.floor(i / 100)}`, `f${i}.bin`] }));
    return { meta: { ...made.meta, files }, data: made.data };
  }

  for (const workers of [0, 2]) {
    it(`equals brute force with files missing, short, long and garbled, holding a bounded number of handles (${workers} workers)`, async () => {
      await withTempDir(async (root) => {
        const made = manySmall(workers + 1);
        const rnd = mulberry32(99 + workers);
        const victims = new Set(Array.from({ length: 24 }, () => Math.floor(rnd() * made.meta.files.length)));
        const faults = [...victims].filter((i) => made.meta.files[i]!.length > 0).map((i, k) => [i, k % 4] as const);
        // the bytes a fault takes away (a removed file's, a truncated one's last) are 0xa5, the
        // stand-in the brute force once filled them with: a missing byte is missing whatever its value
        const data = made.data;
        for (const [i, fault] of faults) {
          const f = made.meta.files[i]!;
          if (fault === 0) data.fill(0xa5, f.offset, f.offset + f.length);
          else if (fault === 1) data[f.offset + f.length - 1] = 0xa5;
        }
        const meta = hashedOver(made.meta, data);
        await writeAll(root, meta, data);
        for (const [i, fault] of faults) {
          const f = meta.files[i]!;
          const p = path.join(root, ...f.path);
          if (fault === 0) await rm(p);
          else if (fault === 1) await truncate(p, f.length - 1);
          else if (fault === 2) await writeFile(p, Buffer.concat([data.subarray(f.offset, f.offset + f.length), Buffer.from('extra')])); // ignored
          else await writeFile(p, Buffer.from(data.subarray(f.offset, f.offset + f.length)).fill(data[f.offset]! ^ 0xff, 0, 1)); // really garbled
        }
        await rm(path.join(root, 'T', 'd7'), { recursive: true }); // a whole folder missing
        const expected = await bruteForce(root, meta);
        expect(expected).toMatch(/1/);
        expect(expected).toMatch(/0/);
        const { result, extra } = await withPeakFds(() => checkExisting(root, meta, { workers }));
        expect(bits(result)).toBe(expected);
        // a handle per open in flight, and a few for the hash workers: never one per file
        expect(extra).toBeLessThanOrEqual(CHECK_OPEN_PARALLEL + 8 * workers + 4);
      });
    });
  }

  it('a file swapped for a symlink while checking: DiskError, nothing read from outside, every handle closed', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'root');
      // a first file filling the first check run; the swap comes with its progress, before the small files are read
      const { meta, data } = manySmall(5, CHECK_RUN_BYTES);
      await writeAll(root, meta, data);
      const i = meta.files.findIndex((f, n) => n > 1500 && f.length > 0);
      const f = meta.files[i]!;
      const p = path.join(root, ...f.path);
      await writeFile(path.join(parent, 'bait'), data.subarray(f.offset, f.offset + f.length));
      const swap = (progress: CheckProgress): void => {
        if (progress.checked !== CHECK_RUN_BYTES / meta.pieceLength) return;
        renameSync(p, `${p}.moved`);
        symlinkSync(path.join(parent, 'bait'), p);
      };
      const before = fds();
      await expect(checkExisting(root, meta, { workers: 0, onProgress: swap })).rejects.toThrow(/symbolic link|escapes the download folder/);
      for (let t = 0; t < 100 && fds() > before; t++) await new Promise((r) => setTimeout(r, 10));
      expect(fds()).toBe(before);
    });
  });

  it('a file swapped for a FIFO while checking: DiskError, no hang, every handle closed', async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'root');
      const { meta, data } = manySmall(5, CHECK_RUN_BYTES);
      await writeAll(root, meta, data);
      const i = meta.files.findIndex((f, n) => n > 1500 && f.length > 0);
      const p = path.join(root, ...meta.files[i]!.path);
      const swap = (progress: CheckProgress): void => {
        if (progress.checked !== CHECK_RUN_BYTES / meta.pieceLength) return;
        renameSync(p, `${p}.moved`);
        execFileSync('mkfifo', [p]);
      };
      const before = fds();
      await expect(checkExisting(root, meta, { workers: 0, onProgress: swap })).rejects.toThrow(/not a regular file/);
      for (let t = 0; t < 100 && fds() > before; t++) await new Promise((r) => setTimeout(r, 10));
      expect(fds()).toBe(before);
    });
  }, 20_000);

  it('with a selection (part file, files not created yet, unselected files on disk) it agrees with what storage reads', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = manySmall(9);
      const rnd = mulberry32(17);
      const first = new FileSelection(meta, meta.files.map(() => rnd() < 0.3));
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: first });
      for (const p of first.wanted.indices()) {
        if (rnd() < 0.9) await storage.writePiece(p, Buffer.from(data.subarray(p * meta.pieceLength, (p + 1) * meta.pieceLength)));
      }
      await storage.close();
      // another selection: some files selected now are not on disk yet, some on disk are not selected any more
      const now = new FileSelection(meta, meta.files.map((_, n) => (first.isSelected(n) ? rnd() < 0.7 : rnd() < 0.3)));
      const have = await checkExisting(root, meta, { selection: now, workers: 0 });
      const reader = await TorrentStorage.open(root, meta, { mode: 'read', selection: now });
      let expected = '';
      for (let p = 0; p < meta.pieceCount; p++) {
        const piece = now.wanted.has(p) ? await reader.readPiece(p) : undefined;
        expected += piece && createHash('sha1').update(piece).digest().equals(meta.pieces.subarray(p * 20, p * 20 + 20)) ? '1' : '0';
      }
      await reader.close();
      expect(expected).toMatch(/1/);
      expect(expected).toMatch(/0/);
      expect(bits(have)).toBe(expected);
    });
  });
});
