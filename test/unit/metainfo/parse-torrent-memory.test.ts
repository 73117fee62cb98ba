/**
 * What a parsed torrent costs: values under keys tt never reads are checked but never
 * built (a 3,000,000-item list under an unknown key took ~700 MB), and the Metainfo keeps
 * one copy of the piece hashes (inside rawInfo) and small per-file records.
 * The memory bounds are measured in a child process (`node --expose-gc`, a capped heap)
 * running the built module (dist/), never timed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BencodeError } from '../../../src/core/errors.js';
import { decode, decodeWithSpans, encode } from '../../../src/metainfo/bencode.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { ensureBuilt } from '../../helpers/build.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PARSE_TORRENT = pathToFileURL(join(ROOT, 'dist/metainfo/parse-torrent.js')).href;

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * Run parseTorrent (dist/) on `input` (stdin) in a child node with `flags`; it prints
 * JSON: the info hash, the file count, and how much heap the kept Metainfo holds per file.
 */
function parseInChild(input: Buffer, flags: string[]): { status: number | null; signal: string | null; out: { infoHash: string; files: number; heapPerFile: number } | undefined; stderr: string } {
  const script = `
    import { readFileSync } from 'node:fs';
    import { parseTorrent } from ${JSON.stringify(PARSE_TORRENT)};
    const bytes = readFileSync(0);
    const gc = globalThis.gc ?? (() => {});
    gc(); gc();
    const before = process.memoryUsage().heapUsed;
    const meta = parseTorrent(bytes, { allowTrailingBytes: true });
    gc(); gc();
    const heap = process.memoryUsage().heapUsed - before;
    process.stdout.write(JSON.stringify({ infoHash: meta.infoHashHex, files: meta.files.length, heapPerFile: heap / meta.files.length }));
  `;
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { input, timeout: 60_000, maxBuffer: 1 << 20 });
  const stdout = r.stdout.toString();
  return { status: r.status, signal: r.signal, out: r.status === 0 ? JSON.parse(stdout) : undefined, stderr: r.stderr.toString().slice(0, 500) };
}

function infoHashOf(torrent: Buffer): string {
  const span = decodeWithSpans(torrent).spans.get('info')!;
  return createHash('sha1').update(torrent.subarray(span.start, span.end)).digest('hex');
}

/** A torrent of `n` 100-byte files in 100 folders. */
function manyFiles(n: number): Buffer {
  const files = Array.from({ length: n }, (_, i) => ({ length: 100, path: [`d${i % 100}`, `f${String(i).padStart(6, '0')}.bin`] }));
  const pieceLength = 262_144;
  const pieces = Buffer.alloc(20 * Math.ceil((100 * n) / pieceLength), 7);
  return encode({ announce: 'http://127.0.0.1:1/announce', info: { files, name: 'many', 'piece length': pieceLength, pieces } });
}

beforeAll(() => ensureBuilt(), 240_000);

describe('parseTorrent: memory', () => {
  it('2,700,000 values under unknown keys (top level, info, a file entry) parse in a 64 MB heap', () => {
    const n = 900_000;
    const torrent = Buffer.concat([
      b('d4:infod5:filesld5:extral'),
      Buffer.alloc(3 * n, 'i0e'), // a file entry's unknown key: integers
      b('e6:lengthi5e4:pathl1:aeed6:lengthi6e4:pathl1:beee4:junkl'),
      Buffer.alloc(2 * n, 'de'), // info's unknown key: empty dicts
      b(`e4:name1:x12:piece lengthi16384e6:pieces20:${'p'.repeat(20)}e4:junkl`),
      Buffer.alloc(2 * n, '0:'), // the top level's: empty strings
      b('ee'),
    ]);
    // ~6 MB of input; before, each of these values was built (~700 MB for 3,000,000 empty strings)
    const r = parseInChild(torrent, ['--max-old-space-size=64']);
    expect(r.stderr).toBe('');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(r.out?.infoHash).toBe(infoHashOf(torrent));
    expect(r.out?.files).toBe(2);
  });

  it('a 20,000-file torrent: the Metainfo keeps under 240 bytes of heap per file (paths, sizes, offsets)', () => {
    const torrent = manyFiles(20_000);
    const r = parseInChild(torrent, ['--expose-gc']);
    expect(r.stderr).toBe('');
    expect(r.out?.files).toBe(20_000);
    expect(r.out?.infoHash).toBe(infoHashOf(torrent));
    // measured: ~166 bytes (was ~330: path arrays kept twice, a string per folder per file)
    expect(r.out!.heapPerFile).toBeLessThan(240);
  });

  it('a 100,000-file torrent (4 MB) parses in a 50 MB heap: its entries are read one by one, never all built at once', () => {
    const torrent = manyFiles(100_000);
    // measured: ~30 MB needed (the Metainfo itself ~17 MB); a tree of every entry first needed ~72
    const r = parseInChild(torrent, ['--max-old-space-size=50']);
    expect(r.stderr).toBe('');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(r.out?.files).toBe(100_000);
    expect(r.out?.infoHash).toBe(infoHashOf(torrent));
  });

  it('the piece hashes are kept once, inside rawInfo, and nothing of the caller\'s bytes', () => {
    const pieceCount = 300; // 6000 bytes of hashes: more than Buffer's pool takes, their own allocation before
    const hashes = Buffer.alloc(20 * pieceCount);
    for (let i = 0; i < hashes.length; i++) hashes[i] = (i * 7) & 0xff;
    const bytes = encode({ info: { length: pieceCount * 16_384, name: 'x', 'piece length': 16_384, pieces: hashes } });
    const meta = parseTorrent(bytes);
    expect(meta.pieces.equals(hashes)).toBe(true);
    expect(meta.pieces.buffer).toBe(meta.rawInfo.buffer);
    expect(meta.pieces.byteOffset - meta.rawInfo.byteOffset).toBe(meta.rawInfo.indexOf(hashes));
    bytes.fill(0);
    expect(meta.pieces.equals(hashes)).toBe(true);
    expect(meta.rawInfo.subarray(0, 1).toString()).toBe('d');
  });

  it('unknown keys change nothing tt reads, and bad bencode inside them is refused as before', () => {
    const plain = encode({
      announce: 'http://127.0.0.1:1/a',
      comment: 'c',
      info: { files: [{ length: 3, path: ['a'] }, { attr: 'p', length: 5, path: ['.pad', '5'] }, { length: 8, path: ['b', 'c'] }], name: 'n', 'piece length': 8, pieces: Buffer.alloc(40, 1) },
      'url-list': ['http://127.0.0.1:2/'],
    });
    const junky = encode({
      announce: 'http://127.0.0.1:1/a',
      comment: 'c',
      'file tree': { a: { '': { length: 3 } } },
      info: {
        files: [
          { length: 3, md5sum: 'x', path: ['a'], 'x-junk': [[], {}, 1] },
          { attr: 'p', length: 5, path: ['.pad', '5'] },
          { length: 8, path: ['b', 'c'], sha1: Buffer.alloc(20) },
        ],
        name: 'n',
        'piece length': 8,
        pieces: Buffer.alloc(40, 1),
        source: 'here',
      },
      'url-list': ['http://127.0.0.1:2/'],
      zzz: { nested: [[[{ deep: 1 }]]] },
    });
    const { infoHash: _h1, infoHashHex: _x1, rawInfo: _r1, ...want } = parseTorrent(plain);
    const { infoHash: _h2, infoHashHex: _x2, rawInfo: _r2, ...got } = parseTorrent(junky);
    expect(got).toEqual(want);
    for (const bad of ['d4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces20:' + 'p'.repeat(20) + '5:x-badi03eee', 'd4:info' + 'd6:lengthi1e4:name1:x12:piece lengthi1e6:pieces20:' + 'p'.repeat(20) + 'e4:junkd1:bi1e1:ai1e1:bi2eee']) {
      let whole: unknown;
      try {
        decode(b(bad));
      } catch (err) {
        whole = err;
      }
      expect(whole).toBeInstanceOf(BencodeError);
      expect(() => parseTorrent(b(bad))).toThrow((whole as Error).message);
    }
  });
});
