/**
 * Filesystem safety of the built `tt download --out TARGET` (HARDENING.md
 * "Paths"; the CVE-2009-1760 / CVE-2010-0012 class): for every path-shaped
 * bad fixture, crafted torrents with `..`/absolute/backslash names, symlinks
 * planted inside TARGET that point outside, and names colliding with existing
 * entries, a peer that serves data is at hand, and the whole tree around
 * TARGET (recursively, with sizes, mtimes, modes, link targets and content
 * hashes) must be unchanged outside TARGET afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode } from '../../../src/metainfo/bencode.js';
import { makeFixture, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, killAllTt, runTt, startTt, type TtProcess } from '../cli/tt-cli.js';
import { startAnySeeder, type AnySeeder } from './any-seeder.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/torrents/', import.meta.url));
/** Bad fixtures about names and paths (the rest are covered by the CLI error tests). */
const PATH_FIXTURES = readdirSync(FIXTURES)
  .filter((f) => /^bad-(traversal|name|path|duplicate-path|file-folder)/.test(f))
  .sort();
const CONCURRENCY = 6;
const PIECE_LENGTH = 16_384;

const seeders: AnySeeder[] = [];
afterEach(async () => {
  await killAllTt();
  for (const s of seeders.splice(0)) await s.close();
  await stopAll();
});

// ---- the arena: <work>/arena/{inner/target, inner/neighbour.txt, outside/...}

interface Arena {
  work: string;
  arena: string;
  target: string;
  outside: string;
}

async function makeArena(): Promise<Arena> {
  const work = await mkdtemp(join(tmpdir(), 'tt-paths-'));
  trackDir(work);
  const arena = join(work, 'arena');
  const target = join(arena, 'inner', 'target');
  const outside = join(arena, 'outside');
  await mkdir(target, { recursive: true });
  await mkdir(join(outside, 'deeper'), { recursive: true });
  await writeFile(join(arena, 'inner', 'neighbour.txt'), 'a file next to the download folder\n');
  await writeFile(join(outside, 'victim.txt'), 'precious data outside the download folder\n');
  await writeFile(join(outside, 'victim.bin'), Buffer.alloc(70_001, 7));
  await writeFile(join(outside, 'deeper', 'c.bin'), Buffer.alloc(100, 1));
  return { work, arena, target, outside };
}

type Snapshot = Map<string, string>;

/** Every entry under dir (not following symlinks): type, size, mode, mtime, link target, content hash. */
async function snapshot(dir: string, root = dir, into: Snapshot = new Map()): Promise<Snapshot> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    const rel = relative(root, path);
    let desc = `${st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other'} size=${st.size} mode=${st.mode.toString(8)} mtime=${st.mtimeMs}`;
    if (st.isSymbolicLink()) desc += ` -> ${await readlink(path)}`;
    if (st.isFile()) desc += ` sha1=${createHash('sha1').update(await readFile(path)).digest('hex')}`;
    into.set(rel, desc);
    if (st.isDirectory()) await snapshot(path, root, into);
  }
  return into;
}

/** Differences between two snapshots of `a.arena`, ignoring TARGET and everything under it. */
function outsideChanges(a: Arena, before: Snapshot, after: Snapshot): string[] {
  const targetRel = relative(a.arena, a.target);
  const inside = (rel: string): boolean => rel === targetRel || rel.startsWith(targetRel + sep);
  const changes: string[] = [];
  for (const [rel, desc] of after) {
    if (inside(rel)) continue;
    if (!before.has(rel)) changes.push(`created ${rel}: ${desc}`);
    else if (before.get(rel) !== desc) changes.push(`modified ${rel}: ${before.get(rel)} => ${desc}`);
  }
  for (const rel of before.keys()) if (!inside(rel) && !after.has(rel)) changes.push(`deleted ${rel}`);
  return changes;
}

async function download(a: Arena, torrent: string, seeder: AnySeeder): Promise<TtProcess> {
  return runTt(
    ['download', torrent, '--out', a.target, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${seeder.port}`, '--peer-timeout', '10s', '--quiet'],
    30_000,
  );
}

async function anySeeder(content: Buffer): Promise<AnySeeder> {
  const s = await startAnySeeder(content, PIECE_LENGTH);
  seeders.push(s);
  return s;
}

/** A torrent with real piece hashes for `files`, with names exactly as given (no checks). */
function craftTorrent(name: string, files: { path: string[]; data: Buffer }[] | Buffer): { torrent: Buffer; content: Buffer } {
  const content = Buffer.isBuffer(files) ? files : Buffer.concat(files.map((f) => f.data));
  const hashes: Buffer[] = [];
  for (let at = 0; at < content.length; at += PIECE_LENGTH) {
    hashes.push(createHash('sha1').update(content.subarray(at, at + PIECE_LENGTH)).digest());
  }
  const info: Record<string, unknown> = { name, 'piece length': PIECE_LENGTH, pieces: Buffer.concat(hashes) };
  if (Buffer.isBuffer(files)) info['length'] = files.length;
  else info['files'] = files.map((f) => ({ length: f.data.length, path: f.path }));
  return { torrent: encode({ info } as never), content };
}

const blob = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe('path-traversal fixtures', () => {
  it(`each of the ${PATH_FIXTURES.length} path fixtures is refused and nothing is created anywhere, TARGET included`, async () => {
    expect(PATH_FIXTURES.length).toBeGreaterThanOrEqual(15);
    const a = await makeArena();
    const seeder = await anySeeder(blob(100_000, 0x42));
    const before = await snapshot(a.arena);
    const results: TtProcess[] = [];
    for (let i = 0; i < PATH_FIXTURES.length; i += CONCURRENCY) {
      const batch = PATH_FIXTURES.slice(i, i + CONCURRENCY);
      results.push(...(await Promise.all(batch.map((f) => download(a, join(FIXTURES, f), seeder)))));
    }
    for (const p of results) expect(p.exit?.code, p.describe()).toBe(4);
    const after = await snapshot(a.arena);
    expect(outsideChanges(a, before, after)).toEqual([]);
    expect(await readdir(a.target)).toEqual([]);
    expect(seeder.served).toBe(0);
  }, 120_000);
});

describe('crafted hostile names', () => {
  const cases: { what: string; make: (a: Arena) => { torrent: Buffer; content: Buffer } }[] = [
    { what: 'name ".."', make: () => craftTorrent('..', blob(40_000, 1)) },
    { what: 'name "."', make: () => craftTorrent('.', [{ path: ['..', 'escaped.txt'], data: blob(20_000, 2) }]) },
    { what: 'path ../../escaped.txt', make: () => craftTorrent('ok', [{ path: ['fine.txt'], data: blob(5, 3) }, { path: ['..', '..', 'escaped.txt'], data: blob(30_000, 3) }]) },
    { what: 'path sub/../../../escaped.txt', make: () => craftTorrent('ok', [{ path: ['sub', '..', '..', '..', 'escaped.txt'], data: blob(30_000, 4) }]) },
    { what: 'absolute path component', make: (a) => craftTorrent('ok', [{ path: [join(a.outside, 'abs-escaped.txt')], data: blob(30_000, 5) }]) },
    { what: 'absolute component mid-path', make: (a) => craftTorrent('ok', [{ path: ['sub', a.outside, 'mid.txt'], data: blob(30_000, 5) }]) },
    { what: 'absolute name', make: (a) => craftTorrent(join(a.outside, 'abs-name.bin'), blob(30_000, 6)) },
    { what: 'name with "/.." inside', make: () => craftTorrent('x/../../escaped', blob(30_000, 7)) },
    { what: 'component "../escaped.txt"', make: () => craftTorrent('ok', [{ path: ['../../escaped.txt'], data: blob(30_000, 8) }]) },
    { what: 'backslash traversal', make: () => craftTorrent('ok', [{ path: ['..\\..\\escaped.txt'], data: blob(30_000, 9) }]) },
    { what: 'empty name', make: () => craftTorrent('', blob(30_000, 10)) },
    { what: 'NUL truncation to ".."', make: () => craftTorrent('ok', [{ path: ['..\0.txt'], data: blob(30_000, 11) }]) },
  ];

  for (const c of cases) {
    it(`${c.what}: refused, nothing outside TARGET touched`, async () => {
      const a = await makeArena();
      const { torrent, content } = c.make(a);
      const torrentPath = join(a.work, 'crafted.torrent');
      await writeFile(torrentPath, torrent);
      const seeder = await anySeeder(content);
      const before = await snapshot(a.arena);
      const p = await download(a, torrentPath, seeder);
      expect(outsideChanges(a, before, await snapshot(a.arena)), p.describe()).toEqual([]);
      expect(p.exit?.code, p.describe()).toBe(4);
    });
  }
});

describe('what is already inside TARGET', () => {
  /** A real multi-file torrent (payload/{a.txt, sub/b.bin, z.bin, ...}) with its content. */
  async function realTorrent(): Promise<{ torrentPath: string; content: Buffer; name: string }> {
    const fx = await makeFixture({ pieceLength: PIECE_LENGTH });
    trackDir(fx.work);
    return { torrentPath: fx.torrentPath, content: Buffer.concat(fx.files.map((f) => f.data)), name: fx.meta.name };
  }

  const planted: { what: string; plant: (a: Arena, name: string) => Promise<void> }[] = [
    { what: 'TARGET/<name> is a symlink to a folder outside', plant: (a, name) => symlink(a.outside, join(a.target, name)) },
    {
      what: 'TARGET/<name>/sub is a symlink to a folder outside',
      plant: async (a, name) => {
        await mkdir(join(a.target, name), { recursive: true });
        await symlink(a.outside, join(a.target, name, 'sub'));
      },
    },
    {
      what: 'TARGET/<name>/a.txt is a symlink to a file outside',
      plant: async (a, name) => {
        await mkdir(join(a.target, name), { recursive: true });
        await symlink(join(a.outside, 'victim.txt'), join(a.target, name, 'a.txt'));
      },
    },
    {
      what: 'TARGET/<name>/z.bin is a dangling symlink to a new file outside',
      plant: async (a, name) => {
        await mkdir(join(a.target, name), { recursive: true });
        await symlink(join(a.outside, 'created-through-link.bin'), join(a.target, name, 'z.bin'));
      },
    },
    {
      what: 'TARGET/<name> is a relative symlink ../../outside',
      plant: (a, name) => symlink(join('..', '..', 'outside'), join(a.target, name)),
    },
  ];

  for (const c of planted) {
    it(`${c.what}: refused (exit 6), nothing outside TARGET touched`, async () => {
      const { torrentPath, content, name } = await realTorrent();
      const a = await makeArena();
      await c.plant(a, name);
      const seeder = await anySeeder(content);
      const before = await snapshot(a.arena);
      const p = await download(a, torrentPath, seeder);
      expect(outsideChanges(a, before, await snapshot(a.arena)), p.describe()).toEqual([]);
      expect(p.exit?.code, p.describe()).toBe(6);
      expect(p.stderr).toMatch(/^tt: .*symbolic link/m);
    });
  }

  it('a single-file torrent whose file is a symlink to a file outside: refused, the outside file intact', async () => {
    const a = await makeArena();
    const { torrent, content } = craftTorrent('single.bin', blob(70_001, 0x33));
    const torrentPath = join(a.work, 'single.torrent');
    await writeFile(torrentPath, torrent);
    await symlink(join(a.outside, 'victim.bin'), join(a.target, 'single.bin'));
    const seeder = await anySeeder(content);
    const before = await snapshot(a.arena);
    const p = await download(a, torrentPath, seeder);
    expect(outsideChanges(a, before, await snapshot(a.arena)), p.describe()).toEqual([]);
    expect(p.exit?.code, p.describe()).toBe(6);
  });

  const collisions: { what: string; plant: (a: Arena, name: string) => Promise<string> }[] = [
    {
      what: 'TARGET/<name> is an existing file where the torrent needs a folder',
      plant: async (a, name) => {
        await writeFile(join(a.target, name), 'I am a file, not a folder\n');
        return join(a.target, name);
      },
    },
    {
      what: 'TARGET/<name>/sub is an existing file where the torrent needs a folder',
      plant: async (a, name) => {
        await mkdir(join(a.target, name), { recursive: true });
        await writeFile(join(a.target, name, 'sub'), 'I am a file, not a folder\n');
        return join(a.target, name, 'sub');
      },
    },
    {
      what: 'TARGET/<name>/z.bin is an existing folder where the torrent needs a file',
      plant: async (a, name) => {
        await mkdir(join(a.target, name, 'z.bin'), { recursive: true });
        await writeFile(join(a.target, name, 'z.bin', 'keep.txt'), 'mine\n');
        return join(a.target, name, 'z.bin');
      },
    },
  ];

  for (const c of collisions) {
    it(`${c.what}: refused (exit 6), the existing entry and everything outside untouched`, async () => {
      const { torrentPath, content, name } = await realTorrent();
      const a = await makeArena();
      const existing = await c.plant(a, name);
      const seeder = await anySeeder(content);
      const before = await snapshot(a.arena);
      const existingBefore = await snapshot(join(existing, '..'));
      const p = await download(a, torrentPath, seeder);
      expect(outsideChanges(a, before, await snapshot(a.arena)), p.describe()).toEqual([]);
      expect(p.exit?.code, p.describe()).toBe(6);
      const existingAfter = await snapshot(join(existing, '..'));
      const key = relative(join(existing, '..'), existing);
      for (const [rel, desc] of existingBefore) if (rel === key || rel.startsWith(key + sep)) expect(existingAfter.get(rel), rel).toBe(desc);
    });
  }
});

describe('a folder swapped for a symlink while downloading', () => {
  it('TARGET/<name>/sub replaced by a symlink to outside after start: nothing outside is written', async () => {
    const fx = await makeFixture({ pieceLength: PIECE_LENGTH }); // payload/{a.txt, empty.bin, sub/b.bin, sub/deeper/c.bin, z.bin}
    trackDir(fx.work);
    const a = await makeArena();
    // the attacker's bait: outside/ mirrors sub/ so an open() through the link finds files to write
    await writeFile(join(a.outside, 'b.bin'), blob(70_001, 0xbb));
    await writeFile(join(a.outside, 'deeper', 'c.bin'), blob(3 * 32_768 + 5, 0xcc));
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 96 * 1024 });
    const before = await snapshot(a.arena);
    const p = startTt(['download', fx.torrentPath, '--out', a.target, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${seed.address.port}`, '--json']);
    await p.waitForEvent('started');
    const sub = join(a.target, fx.meta.name, 'sub');
    await rename(sub, join(a.target, fx.meta.name, 'sub-moved'));
    await symlink(a.outside, sub);
    await p.waitForExit(30_000);
    const changes = outsideChanges(a, before, await snapshot(a.arena));
    expect(changes, p.describe()).toEqual([]);
  });
});

describe('the snapshot comparison itself', () => {
  it('notices a file created, modified or deleted outside TARGET, and ignores changes inside it', async () => {
    const a = await makeArena();
    const before = await snapshot(a.arena);
    await writeFile(join(a.target, 'inside.txt'), 'fine');
    expect(outsideChanges(a, before, await snapshot(a.arena))).toEqual([]);
    await writeFile(join(a.outside, 'victim.txt'), 'precious data outside the download folder\n'.toUpperCase());
    await writeFile(join(a.arena, 'inner', 'escaped.txt'), 'x');
    await rm(join(a.outside, 'deeper', 'c.bin'));
    const changes = outsideChanges(a, before, await snapshot(a.arena));
    expect(changes.some((c) => c.startsWith('modified outside/victim.txt'))).toBe(true);
    expect(changes.some((c) => c.startsWith('created inner/escaped.txt'))).toBe(true);
    expect(changes).toContain(`deleted outside${sep}deeper${sep}c.bin`);
  });
});
