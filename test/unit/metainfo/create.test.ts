import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { decode } from '../../../src/metainfo/bencode.js';
import { createTorrent, createTorrentFromPath, defaultPieceLength, escapeInvalidUtf8 } from '../../../src/metainfo/create.js';
import { pieceHash } from '../../../src/metainfo/metainfo.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { patternBytes, sha1 } from '../../helpers/torrent-factory.js';

const tmp = mkdtempSync(join(tmpdir(), 'tt-create-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectPiecesMatch(bytes: Buffer, data: Buffer): void {
  const m = parseTorrent(bytes);
  expect(m.totalLength).toBe(data.length);
  expect(m.pieceCount).toBe(Math.ceil(data.length / m.pieceLength));
  for (let i = 0; i < m.pieceCount; i++) {
    expect(pieceHash(m, i)).toEqual(sha1(data.subarray(i * m.pieceLength, (i + 1) * m.pieceLength)));
  }
}

describe('defaultPieceLength', () => {
  it('aims at ~1500 pieces, a power of two within 16 KiB..16 MiB', () => {
    expect(defaultPieceLength(1)).toBe(16 * 1024);
    expect(defaultPieceLength(1024 ** 3)).toBe(1024 * 1024);
    expect(defaultPieceLength(1024 ** 4)).toBe(16 * 1024 * 1024);
  });
});

describe('createTorrent (in memory)', () => {
  it('single file round trips with all options, keys canonical', () => {
    const data = patternBytes(50_001);
    const bytes = createTorrent('one.bin', data, {
      pieceLength: 16_384,
      announce: 'http://127.0.0.1:1/a',
      announceList: [['http://127.0.0.1:1/a'], ['udp://127.0.0.1:2']],
      private: true,
      comment: 'c',
      createdBy: 'tt test',
      creationDate: 1234,
      urlList: ['http://127.0.0.1:3/'],
    });
    expectPiecesMatch(bytes, data);
    const m = parseTorrent(bytes);
    expect(m).toMatchObject({
      name: 'one.bin',
      pieceLength: 16_384,
      pieceCount: 4,
      multiFile: false,
      private: true,
      comment: 'c',
      createdBy: 'tt test',
      creationDate: 1234,
      announce: 'http://127.0.0.1:1/a',
      announceList: [['http://127.0.0.1:1/a'], ['udp://127.0.0.1:2']],
      urlList: ['http://127.0.0.1:3/'],
    });
    expect(createTorrent('one.bin', data, { pieceLength: 16_384 }).equals(createTorrent('one.bin', data, { pieceLength: 16_384 }))).toBe(true);
  });

  it('multi-file: pieces span files in the given order, zero-length files kept', () => {
    const files = [
      { path: ['b', 'x.bin'], data: patternBytes(20_000, 1) },
      { path: ['empty'], data: Buffer.alloc(0) },
      { path: ['a.bin'], data: patternBytes(13_000, 2) },
    ];
    const bytes = createTorrent('set', files, { pieceLength: 16_384 });
    expectPiecesMatch(bytes, Buffer.concat(files.map((f) => f.data)));
    expect(parseTorrent(bytes).files.map((f) => f.path.join('/'))).toEqual(['set/b/x.bin', 'set/empty', 'set/a.bin']);
  });

  it('announce defaults to the first tracker of announce-list', () => {
    const m = parseTorrent(createTorrent('x', Buffer.alloc(1), { announceList: [['udp://127.0.0.1:9']] }));
    expect(m.announce).toBe('udp://127.0.0.1:9');
  });

  it('refuses empty content, unsafe names and paths', () => {
    expect(() => createTorrent('x', Buffer.alloc(0))).toThrow(TtError);
    expect(() => createTorrent('..', Buffer.alloc(1))).toThrow(/name/);
    expect(() => createTorrent('x', [{ path: ['a', '..'], data: Buffer.alloc(1) }])).toThrow(/path/);
    expect(() => createTorrent('x', Buffer.alloc(1), { pieceLength: 0 })).toThrow(/piece length/);
  });
});

describe('createTorrentFromPath', () => {
  it('a file makes a single-file torrent with the file name', async () => {
    const data = patternBytes(5 * 1024 * 1024 + 7, 9); // more than one read buffer
    const file = join(tmp, 'big.bin');
    writeFileSync(file, data);
    const bytes = await createTorrentFromPath(file, { pieceLength: 256 * 1024 });
    expectPiecesMatch(bytes, data);
    expect(parseTorrent(bytes).name).toBe('big.bin');
    expect(bytes.equals(createTorrent('big.bin', data, { pieceLength: 256 * 1024 }))).toBe(true);
  });

  it('a folder makes a multi-file torrent with paths sorted, same bytes as in memory', async () => {
    const root = join(tmp, 'folder');
    mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
    const files = [
      { path: ['B.txt'], data: patternBytes(3, 1) },
      { path: ['a.txt'], data: patternBytes(40_000, 2) },
      { path: ['sub', 'deeper', 'z.bin'], data: patternBytes(17_000, 3) },
      { path: ['sub', 'empty'], data: Buffer.alloc(0) },
      { path: ['sub0'], data: patternBytes(1, 4) },
    ];
    for (const f of [...files].reverse()) writeFileSync(join(root, ...f.path), f.data);
    const bytes = await createTorrentFromPath(root, { pieceLength: 16_384 });
    expect(bytes.equals(createTorrent('folder', files, { pieceLength: 16_384 }))).toBe(true);
    const info = (decode(bytes) as Map<string, unknown>).get('info') as Map<string, unknown>;
    expect(info.has('files')).toBe(true);
  });

  it('refuses symlinks, empty folders and missing paths with INPUT errors', async () => {
    const root = join(tmp, 'links');
    mkdirSync(root);
    await expect(createTorrentFromPath(root)).rejects.toThrow(/no files/);
    writeFileSync(join(tmp, 'target'), 'x');
    symlinkSync(join(tmp, 'target'), join(root, 'link'));
    await expect(createTorrentFromPath(root)).rejects.toThrow(/symbolic link/);
    await expect(createTorrentFromPath(join(root, 'link'))).rejects.toThrow(/symbolic link/);
    const missing = createTorrentFromPath(join(tmp, 'nope'));
    await expect(missing).rejects.toBeInstanceOf(TtError);
    await expect(createTorrentFromPath(join(tmp, 'nope'))).rejects.toMatchObject({ code: 'INPUT' });
  });

  it('a file name that is not UTF-8: INPUT naming it with its bad bytes escaped, never U+FFFD', async () => {
    const dir = join(tmp, 'latin1');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'ok.txt'), 'fine');
    // 'bad', 0xff, 'name é.bin' (é as UTF-8 is fine), as raw bytes
    const raw = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff]), Buffer.from('name \u00e9.bin')]);
    writeFileSync(Buffer.concat([Buffer.from(join(dir, 'sub') + '/'), raw]), 'x');
    const err = await createTorrentFromPath(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TtError);
    expect((err as TtError).code).toBe('INPUT');
    expect((err as TtError).message).toBe(`cannot create torrent: file name is not valid UTF-8: ${join(dir, 'sub')}/bad\\xffname \u00e9.bin (rename it, or move it out of the folder)`);
    expect((err as TtError).message).not.toContain('\ufffd');
  });

  it('escapeInvalidUtf8 keeps valid sequences and escapes every other byte', () => {
    const esc = (bytes: number[]): string => escapeInvalidUtf8(Buffer.from(bytes));
    expect(esc([0x61, 0xc3, 0xa9, 0x62])).toBe('a\u00e9b');
    expect(esc([0xff, 0xfe])).toBe('\\xff\\xfe');
    expect(esc([0xc0, 0x80])).toBe('\\xc0\\x80'); // overlong NUL
    expect(esc([0xed, 0xa0, 0x80])).toBe('\\xed\\xa0\\x80'); // a surrogate
    expect(esc([0x61, 0xe2, 0x82])).toBe('a\\xe2\\x82'); // cut short at the end
    expect(esc([0xf0, 0x9f, 0x98, 0x80, 0x80])).toBe('\u{1f600}\\x80');
  });

  it('hashes 256 MiB in a few seconds (big streaming reads)', async () => {
    const file = join(tmp, 'quarter.bin');
    writeFileSync(file, Buffer.alloc(256 * 1024 * 1024, 0xab));
    const t0 = performance.now();
    const m = parseTorrent(await createTorrentFromPath(file));
    const elapsedMs = performance.now() - t0;
    rmSync(file);
    expect(m.pieceLength).toBe(256 * 1024);
    expect(m.pieceCount).toBe(1024);
    expect(elapsedMs).toBeLessThan(5_000);
  });
});
