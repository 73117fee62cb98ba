/**
 * `tt create` (the built CLI) on hostile file systems and output paths: a
 * FIFO or a Unix socket in the folder (or as the source), a file swapped for
 * a FIFO while the folder is being hashed, a file that shrinks or grows while
 * it is hashed, names with newlines, escape sequences and bidi controls (the
 * text and JSON output and every error line must stay terminal-safe), and -o
 * into a missing folder, onto a directory, a FIFO, a symbolic link or a device
 * (refused even with --force), inside the data, or `-` (standard output). Every run ends
 * by itself within a bound with exit 0 or one `tt: ` line, and leaves no
 * temporary file behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, truncate, unlink, writeFile, open } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { TERMINAL_UNSAFE, expectOneLineError, tt } from '../../helpers/cli-sync.js';
import { TT_BIN, killAllTt, startTt, type TtProcess } from './tt-cli.js';

const dirs: string[] = [];
const unixServers: Server[] = [];
afterEach(async () => {
  await killAllTt();
  for (const s of unixServers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function workDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'tt-create-hostile-'));
  dirs.push(d);
  return d;
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

/** A folder `data` in a fresh work dir holding a.txt (and whatever `extra` adds). */
async function dataFolder(extra?: (dir: string) => Promise<void>): Promise<{ work: string; data: string }> {
  const work = await workDir();
  const data = join(work, 'data');
  await mkdir(data);
  await writeFile(join(data, 'a.txt'), 'hello');
  await extra?.(data);
  return { work, data };
}

/** No `.*.tmp` left in `dir`. */
async function expectNoTemp(dir: string): Promise<void> {
  expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
}

/** Waits (bounded) until process `pid` has `file` open (so it is past listing the folder). */
async function untilOpen(pid: number, file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target === file) return;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`pid ${pid} did not open ${file} within ${timeoutMs} ms`);
}

/** Waits for exit; a process still running after `ms` is killed (by PID) and the test fails. */
async function exitWithin(p: TtProcess, ms: number): Promise<void> {
  await p.waitForExit(ms);
}

describe('tt create: special files', () => {
  it('a FIFO in the folder: one error line naming it, no hang, nothing written', async () => {
    const { work, data } = await dataFolder(async (d) => mkfifo(join(d, 'pipe')));
    const out = join(work, 'out.torrent');
    const r = tt(['create', data, '-o', out]);
    expect(expectOneLineError(r, 3)).toMatch(/pipe is not a regular file/);
    await expect(stat(out)).rejects.toThrow();
    await expectNoTemp(work);
  });

  it('a Unix socket in the folder: one error line, nothing written', async () => {
    const { work, data } = await dataFolder(async (d) => {
      const server = createServer();
      unixServers.push(server);
      await new Promise<void>((r) => server.listen(join(d, 'sock'), r));
    });
    const out = join(work, 'out.torrent');
    expect(expectOneLineError(tt(['create', data, '-o', out]), 3)).toMatch(/sock is not a regular file/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('a FIFO as the source: one error line', async () => {
    const work = await workDir();
    mkfifo(join(work, 'fifo'));
    expect(expectOneLineError(tt(['create', join(work, 'fifo'), '-o', join(work, 'x.torrent')]), 3)).toMatch(/not a regular file or folder/);
  });

  it('a file swapped for a FIFO after the folder was listed: tt must not block forever opening it', async () => {
    const { work, data } = await dataFolder(async (d) => {
      await unlink(join(d, 'a.txt'));
      // a.bin is hashed first (sorted); 1 GiB sparse takes long enough to swap b.bin meanwhile
      const fh = await open(join(d, 'a.bin'), 'w');
      await fh.truncate(1024 * 1024 * 1024);
      await fh.close();
      await writeFile(join(d, 'b.bin'), 'bbb');
    });
    const out = join(work, 'out.torrent');
    const p = startTt(['create', data, '-o', out]);
    await untilOpen(p.pid, join(data, 'a.bin'), 5_000);
    await unlink(join(data, 'b.bin'));
    mkfifo(join(data, 'b.bin'));
    await exitWithin(p, 8_000);
    expect(p.exit?.code, p.describe()).toBe(3);
    const lines = p.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines, p.describe()).toHaveLength(1);
    expect(lines[0]).toMatch(/^tt: .*b\.bin/);
    await expect(stat(out)).rejects.toThrow();
  });
});

describe('tt create: a file name that is not UTF-8', () => {
  it('refused with exit 3 and one line naming it with its bad bytes escaped, no garbled path, nothing written', async () => {
    const { work, data } = await dataFolder(async (d) => {
      await writeFile(Buffer.concat([Buffer.from(`${d}/bad`), Buffer.from([0xff, 0xfe]), Buffer.from('name.bin')]), 'x');
    });
    const out = join(work, 'out.torrent');
    const line = expectOneLineError(tt(['create', data, '-o', out]), 3);
    expect(line).toBe(`tt: cannot create torrent: file name is not valid UTF-8: ${data}/bad\\xff\\xfename.bin (rename it, or move it out of the folder)`);
    await expect(stat(out)).rejects.toThrow();
    await expectNoTemp(work);
  });
});

describe('tt create: files changing while hashed', () => {
  it('a file that shrinks while it is read: one error line, nothing written', async () => {
    const work = await workDir();
    const data = join(work, 'big.bin');
    const fh = await open(data, 'w');
    await fh.truncate(1024 * 1024 * 1024);
    await fh.close();
    const out = join(work, 'out.torrent');
    const p = startTt(['create', data, '-o', out]);
    await untilOpen(p.pid, data, 5_000);
    await truncate(data, 1000);
    await exitWithin(p, 10_000);
    expect(p.exit?.code, p.describe()).toBe(3);
    expect(p.stderr).toMatch(/^tt: cannot create torrent: .*big\.bin shrank while it was read\n$/);
    await expect(stat(out)).rejects.toThrow();
    await expectNoTemp(work);
  });

  it('a file that grows while it is read: the torrent describes the length that was listed, and parses', async () => {
    const work = await workDir();
    const data = join(work, 'grow.bin');
    const size = 512 * 1024 * 1024;
    const fh = await open(data, 'w');
    await fh.truncate(size);
    await fh.close();
    const out = join(work, 'out.torrent');
    const p = startTt(['create', data, '-o', out, '--json']);
    await untilOpen(p.pid, data, 5_000);
    await writeFile(data, Buffer.alloc(4096, 1), { flag: 'a' });
    await exitWithin(p, 10_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    const meta = parseTorrent(await readFile(out));
    expect(meta.totalLength).toBe(size);
  });
});

describe('tt create: hostile names stay off the terminal', () => {
  const nasty = 'evil\x1b]0;pwned\x07\x1b[2J\nline2\r\u202egnp.exe\u009b31m';

  it('a folder and file named with escapes, newlines and bidi controls: created, and the text output is terminal-safe', async () => {
    const work = await workDir();
    const data = join(work, nasty);
    await mkdir(data);
    await writeFile(join(data, `\x1b[31mred\u202e\ttab`), 'x'.repeat(100));
    const out = join(work, 'out.torrent');
    const r = tt(['create', data, '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const line of r.stdout.split('\n')) expect(line, JSON.stringify(line)).not.toMatch(TERMINAL_UNSAFE);
    expect(r.stdout.split('\n').filter((l) => l.length > 0)).toHaveLength(7);
    const meta = parseTorrent(await readFile(out));
    expect(meta.name).toBe(nasty);
  });

  it('--json: one JSON object, terminal-safe, that still carries the exact name', async () => {
    const work = await workDir();
    const data = join(work, nasty);
    await mkdir(data);
    await writeFile(join(data, 'f'), 'y');
    const r = tt(['create', data, '-o', join(work, 'o.torrent'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(TERMINAL_UNSAFE);
    expect(JSON.parse(r.stdout).name).toBe(nasty);
  });

  it('an error naming a file with bidi controls (a FIFO named "\\u202eevil") stays terminal-safe', async () => {
    const { work, data } = await dataFolder(async (d) => mkfifo(join(d, '\u202eevil\u2066')));
    const r = tt(['create', data, '-o', join(work, 'o.torrent')]);
    expect(r.status).toBe(3);
    expect(r.stderr, JSON.stringify(r.stderr)).not.toMatch(TERMINAL_UNSAFE);
    expectOneLineError(r, 3);
  });

  it('an error under a folder whose path has escapes and bidi controls stays terminal-safe', async () => {
    const work = await workDir();
    const parent = join(work, 'x\x1b[2J\u202ey');
    const data = join(parent, 'data');
    await mkdir(data, { recursive: true });
    mkfifo(join(data, 'p'));
    const r = tt(['create', data, '-o', join(work, 'o.torrent')]);
    expect(r.stderr, JSON.stringify(r.stderr)).not.toMatch(TERMINAL_UNSAFE);
    expectOneLineError(r, 3);
  });
});

describe('tt create: a .torrent larger than a torrent may be (10 MiB)', () => {
  it('too many files or names: refused before hashing (exit 3), saying so, nothing written', async () => {
    // 2,900 files under 17 folders of 200-byte names: each file's path takes ~3.7 KB of the list
    const { work, data } = await dataFolder();
    const deep = join(data, ...Array.from({ length: 17 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`));
    await mkdir(deep, { recursive: true });
    for (let i = 0; i < 2_900; i++) await writeFile(join(deep, `${String(i).padStart(4, '0')}${'n'.repeat(196)}`), '');
    const out = join(work, 'big.torrent');
    const line = expectOneLineError(tt(['create', data, '-o', out]), 3);
    expect(line).toMatch(/too many files or names for one \.torrent: the list of 2901 files takes 10\.\d MiB, and a \.torrent may have at most 10485760 bytes/);
    await expect(stat(out)).rejects.toThrow();
    await expectNoTemp(work);
  }, 60_000);

  it('too many pieces (9 GiB sparse file, --piece-length 16KiB): refused at once, exit 2, naming the piece length that fits', async () => {
    // hashing 9 GiB would take minutes: the refusal must come before it
    const { work, data } = await dataFolder();
    await truncate(join(data, 'a.txt'), 9 * 1024 ** 3);
    const out = join(work, 'big.torrent');
    const line = expectOneLineError(tt(['create', data, '-o', out, '--piece-length', '16KiB']), 2);
    expect(line).toMatch(/its 589824 pieces of 16384 bytes take 11\.3 MiB of hashes, .*give a larger --piece-length \(32KiB or more\)/);
    await expect(stat(out)).rejects.toThrow();
    await expectNoTemp(work);
  }, 60_000);
});

describe('tt create: output paths', () => {
  it('-o into a folder that does not exist: one DISK error line, nothing created', async () => {
    const { work, data } = await dataFolder();
    const out = join(work, 'missing', 'deeper', 'x.torrent');
    expect(expectOneLineError(tt(['create', data, '-o', out]), 6)).toBe(`tt: cannot write ${out}: folder ${join(work, 'missing', 'deeper')} does not exist`);
    await expect(stat(join(work, 'missing'))).rejects.toThrow();
  });

  it('-o an existing directory: refused (with and without --force), the directory untouched, no temporary file left', async () => {
    const { work, data } = await dataFolder();
    const target = join(work, 'target');
    await mkdir(target);
    await writeFile(join(target, 'keep'), 'k');
    const plain = tt(['create', data, '-o', target]);
    expectOneLineError(plain, plain.status ?? -1);
    expect([2, 6]).toContain(plain.status);
    const forced = tt(['create', data, '-o', target, '--force']);
    expectOneLineError(forced, forced.status ?? -1);
    expect([2, 6]).toContain(forced.status);
    expect((await stat(target)).isDirectory()).toBe(true);
    expect(await readFile(join(target, 'keep'), 'utf8')).toBe('k');
    await expectNoTemp(work);
  });

  it('-o inside the folder being hashed (also as data/../data/x): refused before hashing', async () => {
    const { work, data } = await dataFolder();
    for (const out of [join(data, 'x.torrent'), `${data}/../data/sub/x.torrent`, data]) {
      expect(expectOneLineError(tt(['create', data, '-o', out]), 2)).toMatch(/inside/);
    }
    expect((await readdir(data)).sort()).toEqual(['a.txt']);
    await expectNoTemp(work);
  });

  it('-o inside the folder through a symbolic link (to it, or to a folder below it, as -o\'s parent): refused before hashing', async () => {
    const { work, data } = await dataFolder(async (d) => mkdir(join(d, 'sub')));
    await symlink('data', join(work, 'alias'));
    await symlink(join(data, 'sub'), join(work, 'subalias'));
    await mkdir(join(work, 'elsewhere'));
    await symlink('../alias', join(work, 'elsewhere', 'hop'));
    const outs = [
      join(work, 'alias', 'x.torrent'),
      join(work, 'subalias', 'x.torrent'),
      join(work, 'elsewhere', 'hop', 'sub', 'x.torrent'),
      join(work, 'alias', 'missing', 'x.torrent'),
    ];
    for (const out of outs) {
      for (const force of [[], ['--force']]) expect(expectOneLineError(tt(['create', data, '-o', out, ...force]), 2), out).toMatch(/inside/);
    }
    // the source named through the link, the output written plainly inside it
    expect(expectOneLineError(tt(['create', join(work, 'elsewhere', 'hop', 'sub'), '-o', join(data, 'sub', 'y.torrent')]), 2)).toMatch(/inside/);
    expect((await readdir(data)).sort()).toEqual(['a.txt', 'sub']);
    expect(await readdir(join(data, 'sub'))).toEqual([]);
    await expectNoTemp(work);
    // a link that leads outside the folder is fine
    await symlink('.', join(work, 'here'));
    const r = tt(['create', data, '-o', join(work, 'here', 'ok.torrent')]);
    expect(r.status, r.stderr).toBe(0);
    expect(parseTorrent(await readFile(join(work, 'ok.torrent'))).files.map((f) => f.path.slice(1).join('/'))).toEqual(['a.txt']);
  });

  it('-o onto an existing file without --force: refused and the file kept; with --force: replaced whole', async () => {
    const { work, data } = await dataFolder();
    const out = join(work, 'x.torrent');
    await writeFile(out, 'precious');
    expect(expectOneLineError(tt(['create', data, '-o', out]), 2)).toMatch(/already exists/);
    expect(await readFile(out, 'utf8')).toBe('precious');
    const r = tt(['create', data, '-o', out, '--force']);
    expect(r.status, r.stderr).toBe(0);
    expect(parseTorrent(await readFile(out)).name).toBe('data');
    await expectNoTemp(work);
  });

  it('-o a FIFO with --force: refused (exit 2, says it is a FIFO), no hang, the FIFO stays, nothing created', async () => {
    const { work, data } = await dataFolder();
    const fifo = join(work, 'out.torrent');
    mkfifo(fifo);
    for (const force of [['--force'], []]) {
      expect(expectOneLineError(tt(['create', data, '-o', fifo, ...force]), 2)).toMatch(/out\.torrent is a FIFO \(named pipe\), not a regular file/);
      expect((await lstat(fifo)).isFIFO()).toBe(true);
    }
    expect((await readdir(work)).sort()).toEqual(['data', 'out.torrent']);
  });

  it('-o a symbolic link with --force: refused, neither the link nor the file it points to changes', async () => {
    const { work, data } = await dataFolder();
    const target = join(work, 'real.torrent');
    await writeFile(target, 'precious');
    const link = join(work, 'link.torrent');
    await symlink(target, link);
    expect(expectOneLineError(tt(['create', data, '-o', link, '--force']), 2)).toMatch(/link\.torrent is a symbolic link, not a regular file/);
    expect(await readlink(link)).toBe(target);
    expect(await readFile(target, 'utf8')).toBe('precious');
    expect((await readdir(work)).sort()).toEqual(['data', 'link.torrent', 'real.torrent']);
  });

  it('-o /dev/null (no --force, so nothing is ever written there): refused as a device, not "already exists"', async () => {
    const { data } = await dataFolder();
    expect(expectOneLineError(tt(['create', data, '-o', '/dev/null']), 2)).toMatch(/^tt: \/dev\/null is a character device, not a regular file/);
  });

  it('-o -: the torrent alone on stdout, the summary on stderr; with --json: a usage error', async () => {
    const { work, data } = await dataFolder();
    const r = spawnSync(process.execPath, [TT_BIN, 'create', data, '-o', '-', '--no-date'], { cwd: work, timeout: 30_000 });
    expect(r.status, r.stderr.toString()).toBe(0);
    const meta = parseTorrent(r.stdout);
    expect(meta.name).toBe('data');
    expect(r.stderr.toString()).toContain(`Info hash:   ${meta.infoHashHex}`);
    expect(r.stderr.toString()).toMatch(/^Created: +standard output$/m);
    // the same bytes as a file written with -o FILE
    const out = join(work, 'x.torrent');
    expect(tt(['create', data, '-o', out, '--no-date']).status).toBe(0);
    expect((await readFile(out)).equals(r.stdout)).toBe(true);
    expect((await readdir(work)).sort()).toEqual(['data', 'x.torrent']); // no file named '-'
    expect(expectOneLineError(tt(['create', data, '-o', '-', '--json'], undefined, work), 2)).toMatch(/--json/);
  });
});
