/**
 * `tt create` end to end through the built cli: the .torrent it writes parses
 * with the right files, piece hashes, tiers, private flag and comment; the same
 * input with --no-date gives the same bytes; it never replaces a file without
 * --force, never writes into the folder it describes, never leaves half a file;
 * bad options and unreadable inputs are one line and a documented exit code.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { ensureBuilt } from '../../helpers/build.js';
import { expectOneLineError, tt } from '../../helpers/cli-sync.js';
import { patternBytes } from '../../helpers/torrent-factory.js';

const tmp = mkdtempSync(join(tmpdir(), 'tt-create-'));
const folder = join(tmp, 'build');
const FILES: Record<string, Buffer> = {
  'app.bin': patternBytes(200_001, 3),
  'sub/readme.txt': Buffer.from('hello\n'),
  'sub/z.dat': patternBytes(70_000, 5),
};

beforeAll(async () => {
  for (const [rel, data] of Object.entries(FILES)) {
    mkdirSync(join(folder, rel, '..'), { recursive: true });
    writeFileSync(join(folder, rel), data);
  }
  await ensureBuilt();
}, 130_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tt create', () => {
  it('writes a multi-file torrent whose pieces hash the data, with tiers, private flag and comment; prints hash and magnet', () => {
    const out = join(tmp, 'a.torrent');
    const r = tt(['create', folder, '-o', out, '-t', 'http://127.0.0.1:1/announce', '-t', 'udp://127.0.0.1:2', '--private', '-c', 'nightly 42', '--piece-length', '32KiB']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const meta = parseTorrent(readFileSync(out));
    expect(r.stdout).toContain(`Info hash:   ${meta.infoHashHex}`);
    expect(r.stdout).toContain(`magnet:?xt=urn:btih:${meta.infoHashHex}`);
    expect(meta.name).toBe('build');
    expect(meta.files.map((f) => f.path.slice(1).join('/'))).toEqual(Object.keys(FILES));
    expect(meta.announceList).toEqual([['http://127.0.0.1:1/announce'], ['udp://127.0.0.1:2']]);
    expect(meta.private).toBe(true);
    expect(meta.comment).toBe('nightly 42');
    expect(meta.createdBy).toMatch(/^tt\//);
    expect(meta.creationDate).toBeGreaterThan(1_700_000_000);
    const all = Buffer.concat(Object.values(FILES));
    expect(meta.pieceLength).toBe(32 * 1024);
    for (let i = 0; i < meta.pieceCount; i++) {
      const digest = createHash('sha1').update(all.subarray(i * meta.pieceLength, (i + 1) * meta.pieceLength)).digest();
      expect(digest.equals(meta.pieces.subarray(i * 20, i * 20 + 20)), `piece ${i}`).toBe(true);
    }
  });

  it('a single file; --no-date makes the bytes depend on the input only; --json is one object', () => {
    const one = join(tmp, 'one.torrent');
    const two = join(tmp, 'two.torrent');
    const r = tt(['create', join(folder, 'app.bin'), '-o', one, '--no-date', '--json']);
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout) as { infoHash: string; pieceCount: number; files: number; path: string };
    expect(json.files).toBe(1);
    expect(json.path).toBe(one);
    expect(tt(['create', join(folder, 'app.bin'), '-o', two, '--no-date', '--json']).status).toBe(0);
    expect(readFileSync(one).equals(readFileSync(two))).toBe(true);
    const meta = parseTorrent(readFileSync(one));
    expect(meta.multiFile).toBe(false);
    expect(meta.creationDate).toBeUndefined();
    expect(meta.infoHashHex).toBe(json.infoHash);
  });

  it('the default output is <name>.torrent in the working folder', () => {
    const cwd = join(tmp, 'cwd');
    mkdirSync(cwd);
    expect(tt(['create', folder], undefined, cwd).status).toBe(0);
    expect(readdirSync(cwd)).toEqual(['build.torrent']);
  });

  it('never replaces a file without --force, and leaves no temporary file behind either way', () => {
    const out = join(tmp, 'keep', 'x.torrent');
    mkdirSync(join(tmp, 'keep'));
    writeFileSync(out, 'precious');
    expect(expectOneLineError(tt(['create', folder, '-o', out]), 2)).toContain('already exists');
    expect(readFileSync(out, 'utf8')).toBe('precious');
    expect(tt(['create', folder, '-o', out, '--force']).status).toBe(0);
    expect(parseTorrent(readFileSync(out)).name).toBe('build');
    expect(readdirSync(join(tmp, 'keep'))).toEqual(['x.torrent']);
  });

  it('refuses to write into the folder it describes (the next run would include the .torrent)', () => {
    expect(expectOneLineError(tt(['create', folder, '-o', join(folder, 'sub', 'b.torrent')]), 2)).toContain('inside');
    expect(expectOneLineError(tt(['create', join(folder, 'app.bin'), '-o', join(folder, 'app.bin'), '--force']), 2)).toContain('inside');
    expect(readFileSync(join(folder, 'app.bin')).equals(FILES['app.bin']!)).toBe(true);
  });

  it.each([
    [['--piece-length', '1000'], 'power of two'],
    [['--piece-length', '8KiB'], 'power of two'],
    [['-t', 'ftp://x/announce'], 'tracker URL'],
    [['-t', 'not a url'], 'not a URL'],
    [['-w', 'udp://x'], 'web seed URL'],
    // a URL parser strips tabs and line breaks, so these passed its check, were written raw, and tt's reader dropped them
    [['-t', 'http://127.0.0.1:32201/ann\nounce'], 'tracker URL it holds a line break (U+000A)'],
    [['-t', 'http://127.0.0.1:1/announce\t'], 'tracker URL it holds a tab (U+0009)'],
    [['-t', ' http://127.0.0.1:1/announce'], 'tracker URL it holds a space (U+0020)'],
    [['-t', 'udp://127.0.0.1:1/\x1b[2Jx'], 'tracker URL it holds a control character (U+001B)'],
    [['-w', 'http://127.0.0.1/files/a b'], 'web seed URL it holds a space'],
    [['-w', 'http://127.0.0.1/files/\u0085'], 'web seed URL it holds a control character (U+0085)'],
    // tt never sends credentials, and the torrent would hand them to everyone
    [['-t', 'http://user:secret@127.0.0.1:1/announce'], 'tracker URL carries a user name or password'],
    [['-t', 'udp://user@127.0.0.1:1'], 'tracker URL carries a user name or password'],
    [['-w', 'https://user:secret@127.0.0.1/files/'], 'web seed URL carries a user name or password'],
  ])('bad option %j -> USAGE (2)', (extra, message) => {
    const out = join(tmp, 'never.torrent');
    expect(expectOneLineError(tt(['create', folder, '-o', out, ...extra]), 2)).toContain(message);
    expect(existsSync(out)).toBe(false);
  });

  it('every tracker and web seed URL it accepts is one tt info reads back unchanged', () => {
    const trackers = ['http://127.0.0.1:1/announce?passkey=a%20b', 'udp://[::1]:6969', 'https://tracker.example/ann/ünï', 'wss://t.example/x'];
    const seeds = ['http://127.0.0.1:8080/files/', 'https://seed.example/d%C3%A9p%C3%B4t/build'];
    const out = join(tmp, 'urls.torrent');
    const r = tt(['create', folder, '-o', out, ...trackers.flatMap((t) => ['-t', t]), ...seeds.flatMap((w) => ['-w', w])]);
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(tt(['info', out, '--json']).stdout) as { trackers: string[][]; webSeeds: string[] };
    expect(info.trackers).toEqual(trackers.map((t) => [t]));
    expect(info.webSeeds).toEqual(seeds);
  });

  it('unreadable inputs -> INPUT (3): missing, empty folder, symbolic link inside', () => {
    expect(expectOneLineError(tt(['create', join(tmp, 'absent'), '-o', join(tmp, 'n1.torrent')]), 3)).toContain('absent');
    mkdirSync(join(tmp, 'empty'));
    expect(expectOneLineError(tt(['create', join(tmp, 'empty'), '-o', join(tmp, 'n2.torrent')]), 3)).toContain('no files');
    const linked = join(tmp, 'linked');
    mkdirSync(linked);
    writeFileSync(join(linked, 'a'), 'a');
    symlinkSync('/etc/hostname', join(linked, 'escape'));
    expect(expectOneLineError(tt(['create', linked, '-o', join(tmp, 'n3.torrent')]), 3)).toContain('symbolic link');
    expect(readdirSync(tmp).filter((f) => f.startsWith('n') && f.endsWith('.torrent'))).toEqual([]);
  });
});
