/**
 * Names a disk cannot take as they are, against libtorrent 2.0 (python3-libtorrent, 127.0.0.1
 * only, no tracker): tt writes every file under the name libtorrent gives it (path-safety.ts
 * diskComponent), so a folder one of them downloaded is found by the other with the same torrent.
 * - The mapping itself, name by name, against libtorrent's torrent_info (file_path()).
 * - A torrent made by libtorrent of a folder holding a 297-byte file name (99 CJK characters +
 *   .mp3: too long for any file system) and a name with a control character: libtorrent writes
 *   the data itself (add_piece, test/helpers/lt-write-pieces.py) and seeds it; tt downloads it
 *   into the same names with the same bytes; tt verify finds libtorrent's folder whole, and
 *   libtorrent seeds tt's folder.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from '../../src/metainfo/bencode.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { listTree } from '../helpers/clients/data.js';
import { SYSTEM_PYTHON, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { killAll, startProcess } from '../helpers/clients/process.js';
import { TT_BIN } from '../helpers/clients/tt.js';
import { runTt } from '../integration/cli/tt-cli.js';

const execFileAsync = promisify(execFile);
const WRITE_PIECES_PY = fileURLToPath(new URL('../helpers/lt-write-pieces.py', import.meta.url));
const LONG = `${'日本語の長いファイル名'.repeat(9)}.mp3`; // 301 bytes
const PIECE_LENGTH = 16 * 1024;
const DOWNLOAD_TIMEOUT_MS = 60_000;

/** libtorrent's file_path() of every file of each torrent, as hex of its bytes. */
const LT_PATHS_PY = `
import json, sys
import libtorrent as lt
out = []
for p in sys.argv[1:]:
    fs = lt.torrent_info(p).files()
    out.append([fs.file_path(i).encode("utf-8", "surrogateescape").hex() for i in range(fs.num_files())])
print(json.dumps(out))
`;

const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
const hex = (s: string): string => Buffer.from(s).toString('hex');

describe('names on disk: tt maps them as libtorrent does', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tt-interop-names-'));
  });

  afterAll(async () => {
    await killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('name by name: long ones cut keeping the extension, controls and invalid UTF-8 to _, bidi overrides dropped', async () => {
    const cases: Buffer[] = [
      LONG,
      `a${'\u00e9'.repeat(150)}.flac`,
      '\u{1f600}'.repeat(70),
      `${'a'.repeat(250)}.abcdefgh`,
      `${'a'.repeat(250)}.abcdefghijk`,
      `${'a'.repeat(100)}.b${'c'.repeat(200)}`,
      `${'a'.repeat(245)}.`,
      `${'a'.repeat(239)}.b.c${'d'.repeat(20)}.e`,
      'a\x01b\nc\rd\x1fe\x7ff\tg\x1b[31m',
      'x\u202ey\u2066z\u200e.txt',
      'A: Movie.mkv',
    ].map((s) => Buffer.from(s));
    cases.push(Buffer.from('61ff62e69763c32864f09f9865', 'hex'), Buffer.from('61eda08062', 'hex'), Buffer.from('61c0af62', 'hex'), Buffer.from('61f490808062', 'hex'));
    const torrents: string[] = [];
    const expected: string[][] = [];
    for (const [k, component] of cases.entries()) {
      const data = Buffer.alloc(2, 1);
      // the case as a file in a folder, and as a single-file torrent's name
      for (const [suffix, info] of [
        ['m', { name: 'folder', 'piece length': PIECE_LENGTH, pieces: sha1(data), files: [{ length: 2, path: [component] }] }],
        ['s', { name: component, length: 2, 'piece length': PIECE_LENGTH, pieces: sha1(data) }],
      ] as const) {
        const path = join(dir, `case-${k}${suffix}.torrent`);
        const bytes = encode({ info });
        await writeFile(path, bytes);
        torrents.push(path);
        expected.push(parseTorrent(bytes, { platform: 'linux' }).files.map((f) => hex(f.path.join('/'))));
      }
    }
    const { stdout } = await execFileAsync(SYSTEM_PYTHON, ['-c', LT_PATHS_PY, ...torrents], { timeout: 60_000 });
    const lt = JSON.parse(stdout) as string[][];
    const show = (h: string[]): string[] => h.map((x) => JSON.stringify(Buffer.from(x, 'hex').toString('utf8')));
    for (const [k, paths] of lt.entries()) expect(show(expected[k]!), torrents[k]).toEqual(show(paths));
  });

  it('a 297-byte file name in a folder, seeded by libtorrent: tt downloads it under libtorrent\'s name, and each finds the other\'s folder', async () => {
    const files = [
      { path: ['album', LONG], length: 30_000 },
      { path: ['album', 'b\x01c.txt'], length: 21_200 },
    ];
    const data = Buffer.alloc(51_200);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    const spec = join(dir, 'spec.json');
    await writeFile(spec, JSON.stringify({ pieceLength: PIECE_LENGTH, files: files.map((f) => ({ path: f.path.map(hex), length: f.length })), dataHex: data.toString('hex') }));
    const torrent = join(dir, 'album.torrent');
    const seedDir = join(dir, 'seed');
    await mkdir(seedDir);
    const made = await execFileAsync(SYSTEM_PYTHON, [WRITE_PIECES_PY, spec, torrent, seedDir], { timeout: 90_000 });
    const ltPaths = (JSON.parse(made.stdout) as { paths: string[] }).paths.map((h) => Buffer.from(h, 'hex').toString('utf8'));
    // what libtorrent wrote: 80 characters + .mp3 (244 bytes), and the control character as _
    expect(ltPaths).toEqual([`album/${LONG.slice(0, 80)}.mp3`, 'album/b_c.txt']);
    expect([...(await listTree(seedDir)).keys()]).toEqual([...ltPaths].sort());

    const info = await runTt(['info', torrent, '--json']);
    expect(info.exit?.code, info.describe()).toBe(0);
    expect((JSON.parse(info.stdout) as { files: { path: string[] }[] }).files.map((f) => f.path.join('/'))).toEqual(ltPaths);

    const verify = await runTt(['verify', torrent, '--dir', seedDir]);
    expect(verify.exit?.code, verify.describe()).toBe(0);

    const seeder = await startLtSeeder({ torrent, dataDir: seedDir });
    const out = join(dir, 'out');
    const tt = startProcess('tt download', process.execPath, [
      TT_BIN, 'download', torrent, '--out', out, '--no-trackers', '--peer', `127.0.0.1:${seeder.port}`, '--bind', '127.0.0.1', '--port', '0', '--json',
    ]);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await seeder.stop();
    const tree = await listTree(out);
    expect([...tree.keys()].filter((p) => !p.startsWith('.')).sort()).toEqual([...ltPaths].sort());
    const got = Buffer.concat(await Promise.all(ltPaths.map((p) => readFile(join(out, p)))));
    expect(got.equals(data)).toBe(true);

    // libtorrent finds tt's folder whole: it becomes a seed of it without downloading
    const ltOnTt = await startLtSeeder({ torrent, dataDir: out });
    await ltOnTt.stop();
  }, 240_000);
});
