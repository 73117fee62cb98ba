/**
 * `tt info` end to end: spawns the BUILT cli (bin/tt.js -> dist/) and checks
 * stdout, stderr (one line, no stack) and exit codes.
 */
import { ensureBuilt } from '../../helpers/build.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../../src/metainfo/create.js';
import { badFixtures } from '../../helpers/torrent-factory.js';
import { ROOT, TERMINAL_UNSAFE, expectOneLineError, tt } from '../../helpers/cli-sync.js';

const FIXTURES = join(ROOT, 'fixtures/torrents');
const tmp = mkdtempSync(join(tmpdir(), 'tt-info-'));
const MAGNET_HEX = '0123456789abcdef0123456789abcdef01234567';

// not an unconditional rebuild: rewriting dist/ while other test files spawn tt races them
beforeAll(ensureBuilt, 130_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tt info: what libtorrent opens on Linux, tt opens too', () => {
  it("a name 'A: Movie.mkv' and a path 'x:y' (a colon is an ordinary character here)", () => {
    const path = join(tmp, 'colon.torrent');
    writeFileSync(path, createTorrent('A: Movie', [{ path: ['x:y'], data: Buffer.from('a') }, { path: ['C:', 'b'], data: Buffer.from('b') }]));
    const r = tt(['info', path, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).files.map((f: { path: string[] }) => f.path)).toEqual([['A: Movie', 'x:y'], ['A: Movie', 'C:', 'b']]);
  });

  it('NFC and NFD spellings of one name are two files on Linux, as A and a are', () => {
    const path = join(tmp, 'nfc.torrent');
    writeFileSync(path, createTorrent('n', [{ path: ['caf\u00e9'], data: Buffer.from('a') }, { path: ['cafe\u0301'], data: Buffer.from('b') }, { path: ['A'], data: Buffer.from('c') }, { path: ['a'], data: Buffer.from('d') }]));
    const r = tt(['info', path, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).files).toHaveLength(4);
  });

  it('bytes after the dictionary are ignored, from a file and from stdin; the info hash is the one without them', () => {
    const bytes = readFileSync(join(FIXTURES, 'good-multi.torrent'));
    const hash = JSON.parse(tt(['info', join(FIXTURES, 'good-multi.torrent'), '--json']).stdout).infoHash as string;
    const path = join(tmp, 'trailing.torrent');
    const withTail = Buffer.concat([bytes, Buffer.from('\r\n\x00\x00garbage')]);
    writeFileSync(path, withTail);
    for (const r of [tt(['info', path, '--json']), tt(['info', '-', '--json'], withTail)]) {
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout).infoHash).toBe(hash);
    }
  });
});

describe('tt info: sizes are the files\' (BEP 47 padding apart)', () => {
  it('Total size counts the files and says how much padding the pieces also hold; JSON keeps the torrent length', () => {
    const path = join(FIXTURES, 'good-bep47-padding.torrent');
    const r = tt(['info', path]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Total size: +19\.53 KiB \(20001 bytes\), plus 12\.47 KiB \(12768 bytes\) of padding in pieces$/m);
    expect(JSON.parse(tt(['info', path, '--json']).stdout).totalLength).toBe(32_769);
    // no padding: the line is as it was
    expect(tt(['info', join(FIXTURES, 'good-single.torrent')]).stdout).toMatch(/^Total size: +97\.66 KiB \(100000 bytes\)$/m);
  });
});

describe('tt info: good torrents', () => {
  it('prints the human summary of a single-file torrent', () => {
    const r = tt(['info', join(FIXTURES, 'good-single.torrent')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Name: +hello\.txt$/m);
    expect(r.stdout).toMatch(/^Info hash: +[0-9a-f]{40}$/m);
    expect(r.stdout).toMatch(/^Total size: +97\.66 KiB \(100000 bytes\)$/m);
    expect(r.stdout).toMatch(/^Pieces: +4 x 32\.00 KiB \(32768 bytes\)$/m);
    expect(r.stdout).toMatch(/^Private: +no$/m);
    expect(r.stdout).toMatch(/^Created by: +tt fixtures$/m);
    expect(r.stdout).toMatch(/^Created on: +2023-11-14T22:13:20Z$/m);
    expect(r.stdout).toMatch(/^Comment: +a single-file fixture$/m);
    expect(r.stdout).toMatch(/^ {2}tier 1: http:\/\/127\.0\.0\.1:6969\/announce$/m);
    expect(r.stdout).toMatch(/^Magnet: +magnet:\?xt=urn:btih:[0-9a-f]{40}&dn=hello\.txt&tr=http%3A%2F%2F127/m);
  });

  it('prints tiers, web seeds and files of a multi-file torrent', () => {
    const r = tt(['info', join(FIXTURES, 'good-multi.torrent')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Private:     yes');
    expect(r.stdout).toMatch(/tier 1: http:\/\/127\.0\.0\.1:6969\/announce\n {10}udp:\/\/127\.0\.0\.1:6969\n {2}tier 2: /);
    expect(r.stdout).toContain('Web seeds:\n  http://127.0.0.1:8080/files/');
    expect(r.stdout).toContain('Files (5):');
    // numbered as tt download --select takes them
    expect(r.stdout).toMatch(/^ {2}2 +0 B {2}album\/empty\.txt$/m);
    expect(r.stdout).toMatch(/^ {2}3 +68\.36 KiB {2}album\/sub\/b\.bin$/m);
  });

  it('--json prints one parseable object with stable fields', () => {
    const r = tt(['info', '--json', join(FIXTURES, 'good-multi.torrent')]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual([
      'name', 'infoHash', 'totalLength', 'pieceLength', 'pieceCount', 'private', 'multiFile',
      'files', 'trackers', 'webSeeds', 'createdBy', 'creationDate', 'comment', 'magnet',
    ]);
    expect(j).toMatchObject({
      name: 'album',
      totalLength: 126_386,
      pieceLength: 16_384,
      pieceCount: 8,
      private: true,
      multiFile: true,
      trackers: [['http://127.0.0.1:6969/announce', 'udp://127.0.0.1:6969'], ['http://127.0.0.1:7070/announce']],
      webSeeds: ['http://127.0.0.1:8080/files/'],
      createdBy: null,
      creationDate: null,
      comment: null,
    });
    expect(j['infoHash']).toMatch(/^[0-9a-f]{40}$/);
    expect((j['files'] as unknown[])[2]).toEqual({ number: 3, path: ['album', 'sub', 'b.bin'], length: 70_001, offset: 40_000, padding: false });
  });

  it("reads the torrent from stdin with '-'", () => {
    const bytes = readFileSync(join(FIXTURES, 'good-single.torrent'));
    const fromStdin = tt(['info', '-'], bytes);
    expect(fromStdin.status).toBe(0);
    expect(fromStdin.stdout).toBe(tt(['info', join(FIXTURES, 'good-single.torrent')]).stdout);
  });

  it('shows the first 20 files and a count; --files lists all', () => {
    const files = Array.from({ length: 50 }, (_, i) => ({ path: [`f${String(i).padStart(2, '0')}.txt`], data: Buffer.from([i]) }));
    const path = join(tmp, 'many.torrent');
    writeFileSync(path, createTorrent('many', files));
    const short = tt(['info', path]);
    expect(short.status).toBe(0);
    expect(short.stdout).toContain('Files (50):');
    expect(short.stdout).toContain('many/f19.txt');
    expect(short.stdout).not.toContain('many/f20.txt');
    expect(short.stdout).toContain('... and 30 more (use --files to list all)');
    const all = tt(['info', '--files', path]);
    expect(all.stdout).toContain('many/f49.txt');
    expect(all.stdout).not.toContain('more (use --files');
  });

  it('neutralises terminal escapes, C1 controls and bidi overrides in names', () => {
    const path = join(FIXTURES, 'good-escape-name.torrent');
    const human = tt(['info', path]);
    expect(human.status).toBe(0);
    expect(human.stdout).not.toMatch(TERMINAL_UNSAFE);
    expect(human.stdout).toMatch(/^Name: +evil\ufffd\[31mRED/m);
    const json = tt(['info', '--json', path]);
    expect(json.stdout).not.toMatch(TERMINAL_UNSAFE);
    expect((JSON.parse(json.stdout) as { name: string }).name).toBe('evil\x1b[31mRED\x1b]0;pwned\x07\u009b2J\u202eexe.txt');
  });
});

describe('tt info: errors are one line and a documented exit code', () => {
  it('missing file -> INPUT (3)', () => {
    expect(expectOneLineError(tt(['info', join(tmp, 'absent.torrent')]), 3)).toBe(`tt: cannot read ${join(tmp, 'absent.torrent')}: no such file or directory`);
  });

  it('a magnet link -> INPUT (3) for info, pointing at download (which fetches the metadata)', () => {
    const magnet = 'magnet:?xt=urn:btih:024eae68c2e8e05d1e82adb56ceb065c6d414df4&dn=x';
    expect(expectOneLineError(tt(['info', magnet]), 3)).toContain('use tt download <magnet>');
  });

  it('tt download of a magnet with no tracker and no --peer -> USAGE (2); a bad info hash -> METAINFO (4)', () => {
    const magnet = 'magnet:?xt=urn:btih:024eae68c2e8e05d1e82adb56ceb065c6d414df4&dn=x';
    expect(expectOneLineError(tt(['download', magnet, '--out', tmp, '--bind', '127.0.0.1', '--port', '0']), 2)).toContain('names no tracker or peer (x.pe) and no --peer given');
    expect(expectOneLineError(tt(['download', 'magnet:?xt=urn:btih:1234&dn=x', '--out', tmp, '--bind', '127.0.0.1', '--port', '0']), 4)).toContain('magnet.xt');
    expect(expectOneLineError(tt(['download', 'magnet:?dn=x&tr=http%3A%2F%2F127.0.0.1%3A1%2Fa', '--out', tmp, '--bind', '127.0.0.1', '--port', '0']), 4)).toContain('no urn:btih');
  });

  it('a directory -> INPUT (3)', () => {
    expect(expectOneLineError(tt(['info', FIXTURES]), 3)).toContain('is a directory');
  });

  it('an empty file -> BENCODE (4): there and readable, it just is no torrent (stdin too)', () => {
    const path = join(tmp, 'empty.torrent');
    writeFileSync(path, '');
    expect(expectOneLineError(tt(['info', path]), 4)).toBe(`tt: ${path}: empty file, not a torrent`);
    expect(expectOneLineError(tt(['info', '-']), 4)).toBe('tt: standard input: empty, not a torrent');
  });

  it('a file that is not a torrent -> BENCODE (4)', () => {
    expect(expectOneLineError(tt(['info', join(ROOT, 'package.json')]), 4)).toContain('not a torrent file');
  });

  it('stdin (or a file) over 10 MiB is refused naming it', () => {
    const big = Buffer.alloc(10 * 1024 * 1024 + 100, 0x65);
    expect(expectOneLineError(tt(['info', '-'], big), 4)).toBe('tt: standard input: larger than 10485760 bytes (10 MiB), the most a .torrent may be');
    const path = join(tmp, 'big.torrent');
    writeFileSync(path, big);
    expect(expectOneLineError(tt(['info', path]), 4)).toBe(`tt: ${path}: larger than 10485760 bytes (10 MiB), the most a .torrent may be`);
  });

  it('a missing argument is a usage error (2)', () => {
    expect(tt(['info']).status).toBe(2);
  });

  it.each(badFixtures().map((f) => [f.file, f.field] as const))('%s -> exit 4 naming %s', (file, field) => {
    const line = expectOneLineError(tt(['info', join(FIXTURES, file)]), 4);
    if (field === 'bencode') expect(line).toMatch(/^tt: not a torrent file: .* at byte \d+$/);
    else expect(line).toContain(`invalid torrent: ${field}: `);
  });
});

describe('tt download <magnet>: anything starting with magnet: is a link (exit 4 with the reason when bad)', () => {
  it.each([
    ['magnet:', /empty: a magnet link is magnet:\?xt=urn:btih:/],
    [`magnet://?xt=urn:btih:${MAGNET_HEX}`, /'magnet:\/\/\?\.\.\.' is not how a magnet link starts/],
    [`MAGNET:xt=urn:btih:${MAGNET_HEX}`, /is not how a magnet link starts/],
    [`magnet:?xt=urn:btmh:1220${'ab'.repeat(32)}&x.pe=127.0.0.1:1`, /magnet\.xt: a v2-only link \(urn:btmh\): tt reads v1 links \(urn:btih\) only/],
    [`magnet:?xt=urn:btih:${MAGNET_HEX}&xt=urn:btih:${'f'.repeat(40)}&x.pe=127.0.0.1:1`, /two different info hashes/],
    [`magnet:?xt=urn:btih:${MAGNET_HEX}&so=1,x&x.pe=127.0.0.1:1`, /magnet\.so: 'x' is not a file index/],
  ])('%s', (link, reason) => {
    const line = expectOneLineError(tt(['download', link, '--out', join(tmp, 'never'), '--bind', '127.0.0.1', '--port', '0']), 4);
    expect(line).toMatch(/^tt: invalid magnet link: /);
    expect(line).toMatch(reason);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('the same hash twice is one torrent: no refusal (it goes on to look for peers)', () => {
    const r = tt(['download', `magnet:?xt=urn:btih:${MAGNET_HEX}&xt.2=urn:btih:${MAGNET_HEX.toUpperCase()}`, '--out', join(tmp, 'never'), '--bind', '127.0.0.1', '--port', '0']);
    expect(expectOneLineError(r, 2)).toContain('names no tracker or peer (x.pe)');
  });

  it('an x.pe without a port is named, in the error when nothing else is left', () => {
    const r = tt(['download', `magnet:?xt=urn:btih:${MAGNET_HEX}&x.pe=127.0.0.1`, '--out', join(tmp, 'never'), '--bind', '127.0.0.1', '--port', '0']);
    expect(expectOneLineError(r, 2)).toBe(
      'tt: the magnet link names no tracker or usable peer (x.pe=127.0.0.1: not host:port) and no --peer given, tt cannot find peers: use --dht, or give peers with --peer host:port',
    );
  });

  it('an x.pe without a port beside a usable peer: a warning naming it, then the download goes on', () => {
    const r = tt(['download', `magnet:?xt=urn:btih:${MAGNET_HEX}&x.pe=10.0.0.1&x.pe=127.0.0.1:1`, '--out', join(tmp, 'never'), '--bind', '127.0.0.1', '--port', '0', '--peer-timeout', '1s']);
    expect(r.status, r.stderr).toBe(5);
    expect(r.stderr).toContain("warning: the magnet link's x.pe=10.0.0.1: not host:port, ignored\n");
  });
});
