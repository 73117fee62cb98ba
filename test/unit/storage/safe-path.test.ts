import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DiskError } from '../../../src/core/errors.js';
import { LIST_FOLDER_MIN_FILES, lookupAllInside, resolveAllInside, resolveInside } from '../../../src/storage/safe-path.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { makeTorrent, withFileIn } from './fixture.js';

// lstat counted (and still done): resolveAllInside must not need one per file of a listed folder
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, lstat: vi.fn(actual.lstat) };
});

/** Every path under `dir`, recursively (symlinks not followed). */
async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => path.join(e.parentPath ?? e.path, e.name)).sort();
}

let parent: string;
let root: string;
let outside: string;

beforeEach(async () => {
  parent = await mkdtemp(path.join(tmpdir(), 'tt-safe-'));
  root = path.join(parent, 'root');
  outside = path.join(parent, 'outside');
  await mkdir(root);
  await mkdir(outside);
});

afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

describe('resolveInside', () => {
  it('returns the absolute path under root for a fresh path', async () => {
    await expect(resolveInside(root, ['T', 'a', 'b.bin'])).resolves.toBe(path.join(root, 'T', 'a', 'b.bin'));
  });

  it.each([[['..', 'x']], [['T', '..', '..', 'x']], [['.']], [['']], [['a/b']], [['a\\b']], [['x\0y']], [['/etc/passwd']], [[]]])(
    'refuses the components %j',
    async (components) => {
      await expect(resolveInside(root, components)).rejects.toBeInstanceOf(DiskError);
    },
  );

  it('a colon is an ordinary character on POSIX (as parseTorrent has it): C:x and "A: Movie.mkv" resolve under root', async () => {
    await expect(resolveInside(root, ['T', 'C:x'])).resolves.toBe(path.join(root, 'T', 'C:x'));
    await expect(resolveInside(root, ['A: Movie.mkv'])).resolves.toBe(path.join(root, 'A: Movie.mkv'));
  });

  it('refuses a pre-existing symlinked folder pointing out of root', async () => {
    await symlink(outside, path.join(root, 'T'));
    await expect(resolveInside(root, ['T', 'f.bin'])).rejects.toThrow(/symbolic link/);
  });

  it('refuses a pre-existing symlinked file, even one pointing inside root', async () => {
    await mkdir(path.join(root, 'T'));
    await writeFile(path.join(root, 'real'), 'x');
    await symlink(path.join(root, 'real'), path.join(root, 'T', 'f.bin'));
    await expect(resolveInside(root, ['T', 'f.bin'])).rejects.toThrow(/symbolic link/);
  });

  it('refuses a file where a folder is needed, and a folder where a file is expected', async () => {
    await writeFile(path.join(root, 'T'), 'x');
    await expect(resolveInside(root, ['T', 'f.bin'])).rejects.toThrow(/not a folder/);
    await mkdir(path.join(root, 'D', 'f.bin'), { recursive: true });
    await expect(resolveInside(root, ['D', 'f.bin'])).rejects.toThrow(/not a regular file/);
  });

  it('allows the root itself to be a symlink', async () => {
    const link = path.join(parent, 'link');
    await symlink(root, link);
    await expect(resolveInside(link, ['T', 'f.bin'])).resolves.toBe(path.join(link, 'T', 'f.bin'));
  });
});

describe('storage never writes outside root', () => {
  it('refuses a torrent folder that is a symlink out of root, and nothing appears outside', async () => {
    await symlink(outside, path.join(root, 'T'));
    const before = await snapshot(parent);
    const { meta } = makeTorrent([100, 200], 64);
    await expect(TorrentStorage.open(root, meta, { mode: 'readwrite' })).rejects.toBeInstanceOf(DiskError);
    expect(await snapshot(parent)).toEqual(before);
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses a symlinked data file when seeding (read mode), so it cannot leak other files', async () => {
    await mkdir(path.join(root, 'T'));
    await writeFile(path.join(outside, 'secret'), 'secret');
    await symlink(path.join(outside, 'secret'), path.join(root, 'T', 'f0.bin'));
    const { meta } = makeTorrent([6], 16);
    await expect(TorrentStorage.open(root, meta, { mode: 'read' })).rejects.toThrow(/symbolic link/);
  });

  /** T/f0.bin and T/sub/f1.bin; bait files in outside/ mirror T/sub/ so an open through a link finds them. */
  async function swappable(pieceLength: number): Promise<{ meta: ReturnType<typeof withFileIn>; data: Buffer; bait: Buffer }> {
    const made = makeTorrent([pieceLength, pieceLength], pieceLength);
    const bait = Buffer.alloc(pieceLength, 0xbb);
    await writeFile(path.join(outside, 'f1.bin'), bait);
    return { meta: withFileIn(made.meta, 1, 'sub'), data: made.data, bait };
  }

  async function swapSubForLink(): Promise<void> {
    await rename(path.join(root, 'T', 'sub'), path.join(root, 'T', 'sub-moved'));
    await symlink(outside, path.join(root, 'T', 'sub'));
  }

  it('a folder swapped for a symlink after open: a write that reopens the file is refused, nothing outside changes', async () => {
    const { meta, data, bait } = await swappable(64);
    await (await TorrentStorage.open(root, meta, { mode: 'readwrite' })).close(); // the files exist: open() holds them read-only
    const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
    await storage.writePiece(0, data.subarray(0, 64));
    await swapSubForLink();
    const before = await snapshot(outside);
    const err = await storage.writePiece(1, data.subarray(64, 128)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskError);
    expect((err as DiskError).message).toMatch(/f1\.bin.*escapes the download folder/);
    expect(await readFile(path.join(outside, 'f1.bin'))).toEqual(bait);
    expect(await snapshot(outside)).toEqual(before);
    await storage.close();
  });

  it('a folder swapped for a symlink while seeding: reads are refused, no outside byte is returned', async () => {
    const { meta, data } = await swappable(64);
    await mkdir(path.join(root, 'T', 'sub'), { recursive: true });
    await writeFile(path.join(root, 'T', 'f0.bin'), data.subarray(0, 64));
    await writeFile(path.join(root, 'T', 'sub', 'f1.bin'), data.subarray(64));
    const storage = await TorrentStorage.open(root, meta, { mode: 'read' });
    await swapSubForLink();
    await expect(storage.readPiece(1)).rejects.toThrow(/escapes the download folder/);
    await expect(storage.readBlock(1, 0, 16)).rejects.toThrow(/escapes the download folder/);
    expect((await storage.readPiece(0))?.equals(data.subarray(0, 64))).toBe(true); // the rest still serves
    await storage.close();
  });

  it('keeps the handles open() created, so a later swap does not redirect writes to them', async () => {
    const { meta, data, bait } = await swappable(64);
    const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
    expect(storage.openFiles).toBe(2);
    await swapSubForLink();
    await storage.writePiece(1, data.subarray(64, 128));
    await storage.close();
    expect(await readFile(path.join(root, 'T', 'sub-moved', 'f1.bin'))).toEqual(data.subarray(64, 128));
    expect(await readFile(path.join(outside, 'f1.bin'))).toEqual(bait);
  });

  it('read mode: the root itself swapped for a symlink after open is refused on the first read', async () => {
    const { meta, data } = makeTorrent([64], 64);
    await mkdir(path.join(root, 'T'));
    await writeFile(path.join(root, 'T', 'f0.bin'), data);
    await mkdir(path.join(outside, 'T'));
    await writeFile(path.join(outside, 'T', 'f0.bin'), Buffer.alloc(64, 0xbb));
    const storage = await TorrentStorage.open(root, meta, { mode: 'read' });
    await rename(root, path.join(parent, 'root-moved'));
    await symlink(outside, root);
    await expect(storage.readPiece(0)).rejects.toThrow(/escapes the download folder/);
    await storage.close();
  });

  it('works through a root that is itself a symlink', async () => {
    const link = path.join(parent, 'link');
    await symlink(root, link);
    const { meta, data } = makeTorrent([10, 20], 8);
    const storage = await TorrentStorage.open(link, meta, { mode: 'readwrite', maxOpenFiles: 1 });
    for (let i = 0; i < meta.pieceCount; i++) await storage.writePiece(i, data.subarray(i * 8, Math.min(30, i * 8 + 8)));
    for (let i = 0; i < meta.pieceCount; i++) expect((await storage.readPiece(i))?.equals(data.subarray(i * 8, Math.min(30, i * 8 + 8)))).toBe(true);
    await storage.close();
    expect(await readFile(path.join(root, 'T', 'f1.bin'))).toEqual(data.subarray(10));
  });
});

describe('resolveAllInside', () => {
  it('gives what resolveInside gives, path by path, and refuses the same things', async () => {
    await mkdir(path.join(root, 't', 'a'), { recursive: true });
    await writeFile(path.join(root, 't', 'a', 'f1'), 'x');
    const outside = await mkdtemp(path.join(tmpdir(), 'tt-outside-'));
    try {
      await symlink(outside, path.join(root, 't', 'link'));
      const ok = [['t', 'a', 'f1'], ['t', 'a', 'f2'], ['t', 'new', 'deep', 'f3'], ['t', 'f4']];
      expect(await resolveAllInside(root, ok)).toEqual(await Promise.all(ok.map((c) => resolveInside(root, c))));
      // a symlinked folder anywhere in the list fails the whole lookup, however many paths share it
      const withLink = [...ok, ...Array.from({ length: 50 }, (_, i) => ['t', 'link', `f${i}`])];
      await expect(resolveAllInside(root, withLink)).rejects.toThrow(/symbolic link/);
      await expect(resolveAllInside(root, [['t', 'a']])).rejects.toThrow(/not a regular file/);
      await expect(resolveAllInside(root, [['t', 'a', 'f1', 'x']])).rejects.toThrow(/not a folder/);
      await expect(resolveAllInside(root, [['t', '..', 'x']])).rejects.toThrow(DiskError);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('random trees (files, folders, symlinks, FIFOs where files or folders belong): what resolveInside says path by path, missing where lstat finds nothing', async () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed / 0x7fffffff);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    let refused = 0;
    for (let t = 0; t < 300; t++) {
      const top = path.join(root, `t${t}`);
      const paths = Array.from({ length: 1 + Math.floor(rnd() * (rnd() < 0.3 ? 60 : 8)) }, () =>
        Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(['a', 'b', 'c', 'd', 'é', 'x y'])),
      );
      if (rnd() < 0.8) await mkdir(top);
      for (const p of paths) {
        if (rnd() < 0.5) continue;
        const full = path.join(top, ...p);
        const kind = rnd();
        try {
          await mkdir(path.dirname(full), { recursive: true });
          if (kind < 0.6) await writeFile(full, 'x', { flag: 'wx' });
          else if (kind < 0.7) await mkdir(full);
          else if (kind < 0.8) await symlink(path.join(outside, 'x'), full);
          else if (kind < 0.85) execFileSync('mkfifo', [full]);
          else if (path.dirname(full) !== top) {
            await rm(path.dirname(full), { recursive: true, force: true });
            if (rnd() < 0.5) await symlink(outside, path.dirname(full));
          }
        } catch {
          // a file already where a folder goes: the tree is what it is
        }
      }
      const each = await Promise.all(paths.map((c) => resolveInside(top, c).then((p) => ({ p }), (err: Error) => ({ err: err.message }))));
      const errors = each.flatMap((e) => ('err' in e ? [e.err] : []));
      const all = await lookupAllInside(top, paths).catch((err: Error) => err);
      if (errors.length > 0) {
        // some path is refused: so is the whole lookup, with one of the paths' own reasons
        expect(all).toBeInstanceOf(DiskError);
        expect(errors).toContain((all as Error).message);
        refused++;
        continue;
      }
      const missing = await Promise.all(each.map((e) => fsp.lstat((e as { p: string }).p).then(() => false, () => true)));
      expect(all).toEqual(each.map((e, i) => ({ path: (e as { p: string }).p, missing: missing[i] })));
    }
    expect(refused).toBeGreaterThan(30);
    expect(refused).toBeLessThan(270);
  });

  it('resolves 100,000 paths in seconds, not minutes (folders checked once, lookups in parallel)', async () => {
    await mkdir(path.join(root, 'many'), { recursive: true });
    const paths = Array.from({ length: 100_000 }, (_, i) => ['many', `d${i % 100}`, `f${i}`]);
    const t0 = Date.now();
    const out = await resolveAllInside(root, paths);
    expect(out).toHaveLength(100_000);
    expect(out[99_999]).toBe(path.join(root, 'many', 'd99', 'f99999'));
    // one lstat per missing folder instead of one per file: well under the ~10 s one at a time took
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it(`a folder holding ${LIST_FOLDER_MIN_FILES}+ of the files is listed once: the same answers and refusals as resolveInside, without an lstat per file`, async () => {
    const many = path.join(root, 't', 'many');
    await mkdir(many, { recursive: true });
    await mkdir(path.join(root, 't', 'few'));
    const names = Array.from({ length: 300 }, (_, i) => `f${i}`);
    for (const name of names.slice(0, 200)) await writeFile(path.join(many, name), 'x'); // f200.. missing
    await writeFile(path.join(root, 't', 'few', 'f0'), 'x');
    const paths = [...names.map((n) => ['t', 'many', n]), ['t', 'few', 'f0'], ['t', 'few', 'f1'], ['t', 'gone', 'f0']];
    const lstat = vi.mocked(fsp.lstat);
    lstat.mockClear();
    expect(await resolveAllInside(root, paths)).toEqual(paths.map((c) => path.join(root, ...c)));
    // t, t/many, t/few, t/gone, the 100 missing names of t/many (not listed: looked up), and t/few's two
    expect(lstat.mock.calls.length).toBeLessThanOrEqual(4 + 100 + 2);

    // what a listing does not show as a regular file is refused as resolveInside refuses it
    const cases: [string, () => Promise<void>, RegExp][] = [
      ['link-out', () => symlink(path.join(outside, 'x'), path.join(many, 'link-out')), /symbolic link/],
      ['link-in', () => symlink(path.join(many, 'f0'), path.join(many, 'link-in')), /symbolic link/],
      ['dir', () => mkdir(path.join(many, 'dir')), /not a regular file/],
      ['fifo', async () => void execFileSync('mkfifo', [path.join(many, 'fifo')]), /not a regular file/],
    ];
    for (const [name, make, why] of cases) {
      await make();
      await expect(resolveInside(root, ['t', 'many', name]), name).rejects.toThrow(why);
      await expect(resolveAllInside(root, [...paths, ['t', 'many', name]]), name).rejects.toThrow(why);
    }
  });

  it('a name on disk that is not UTF-8 (listed with U+FFFD) does not vouch for the UTF-8 name U+FFFD', async () => {
    const many = path.join(root, 'many');
    await mkdir(many);
    const paths = Array.from({ length: LIST_FOLDER_MIN_FILES }, (_, i) => ['many', `f${i}`]);
    for (const [, name] of paths) await writeFile(path.join(many, name!), 'x');
    // a regular file named by the byte 0xff, which readdir shows as "\uFFFD" ...
    await writeFile(Buffer.concat([Buffer.from(`${many}/`), Buffer.from([0xff])]), 'x');
    expect(await readdir(many)).toContain('\uFFFD');
    // ... and the torrent's "\uFFFD", which is the bytes EF BF BD: a symlink out of root
    await symlink(path.join(outside, 'x'), path.join(many, '\uFFFD'));
    await expect(resolveAllInside(root, [...paths, ['many', '\uFFFD']])).rejects.toThrow(/symbolic link/);
  });
});
