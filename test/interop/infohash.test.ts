/**
 * Info hashes agree with libtorrent 2.0 (BEP 3: SHA-1 of the raw bencoded info dictionary),
 * both ways: torrents libtorrent creates parse in tt with libtorrent's hash, and torrents tt
 * creates are accepted by libtorrent with tt's hash. Includes an unsorted-keys torrent.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTorrentFromPath } from '../../src/metainfo/create.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { writeMultiFileData, MULTI_FILE_LAYOUT } from '../helpers/clients/data.js';
import { ltCreate, ltInfoHash } from '../helpers/clients/libtorrent.js';

const FIXTURES_DIR = new URL('../../fixtures/', import.meta.url);
const PIECE_LENGTHS = [16 * 1024, 32 * 1024, 64 * 1024];
const TRACKER = 'http://127.0.0.1:6969/announce';

let dir: string;
let folder: string;
let singleFile: string;
let oddSingleFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-infohash-'));
  folder = await writeMultiFileData(dir, 'multi');
  singleFile = join(dir, 'single.bin');
  await writeFile(singleFile, randomBytes(3 * 32 * 1024)); // exact multiple of the piece length
  oddSingleFile = join(dir, 'odd single.dat');
  await writeFile(oddSingleFile, randomBytes(100_001));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectedPieceCount(total: number, pieceLength: number): number {
  return Math.ceil(total / pieceLength);
}

describe('torrents created by libtorrent, parsed by tt', () => {
  const cases = () => [
    { label: 'multi-file folder', path: folder },
    { label: 'single file, exact pieces', path: singleFile },
    { label: 'single file, odd size and a space in the name', path: oddSingleFile },
  ];
  for (const pieceLength of PIECE_LENGTHS) {
    for (const which of [0, 1, 2]) {
      it(`case ${which} at piece length ${pieceLength / 1024} KiB`, async () => {
        const c = cases()[which]!;
        const out = join(dir, `lt-${which}-${pieceLength}.torrent`);
        const created = await ltCreate(c.path, out, { pieceLength, trackers: [TRACKER] });
        const meta = parseTorrent(await readFile(out));
        expect(meta.infoHashHex, c.label).toBe(created);
        expect(meta.infoHashHex).toBe(await ltInfoHash(out));
        expect(meta.pieceLength).toBe(pieceLength);
        expect(meta.pieceCount).toBe(expectedPieceCount(meta.totalLength, pieceLength));
        expect(meta.announce).toBe(TRACKER);
      });
    }
  }

  it('reads the multi-file layout libtorrent wrote: every file, the zero-length one included', async () => {
    const out = join(dir, 'lt-layout.torrent');
    await ltCreate(folder, out, { pieceLength: 16 * 1024 });
    const meta = parseTorrent(await readFile(out));
    expect(meta.multiFile).toBe(true);
    expect(meta.name).toBe('multi');
    const files = new Map(meta.files.filter((f) => !f.padding).map((f) => [f.path.slice(1).join('/'), f.length]));
    expect(Object.fromEntries(files)).toEqual(MULTI_FILE_LAYOUT);
    const total = Object.values(MULTI_FILE_LAYOUT).reduce((a, b) => a + b, 0);
    expect(meta.totalLength).toBe(total);
  });
});

describe('torrents created by tt, hashed by libtorrent', () => {
  for (const pieceLength of PIECE_LENGTHS) {
    it(`multi-file and single-file at ${pieceLength / 1024} KiB: libtorrent accepts them with tt's hash`, async () => {
      for (const [label, path] of [['multi', folder], ['single', singleFile], ['odd', oddSingleFile]] as const) {
        const bytes = await createTorrentFromPath(path, { pieceLength, announce: TRACKER });
        const out = join(dir, `tt-${label}-${pieceLength}.torrent`);
        await writeFile(out, bytes);
        const meta = parseTorrent(bytes);
        // independent of tt's parser: SHA-1 of the info span, located by libtorrent
        expect(await ltInfoHash(out), label).toBe(meta.infoHashHex);
      }
    });
  }

  it('tt and libtorrent agree on single-file info dicts byte for byte, and on multi-file content', async () => {
    for (const path of [folder, singleFile, oddSingleFile]) {
      const ltOut = join(dir, 'same-lt.torrent');
      const ltHash = await ltCreate(path, ltOut, { pieceLength: 32 * 1024 });
      const ttMeta = parseTorrent(await createTorrentFromPath(path, { pieceLength: 32 * 1024 }));
      const ltMeta = parseTorrent(await readFile(ltOut));
      const fileSet = (files: typeof ttMeta.files): string[] =>
        files.filter((f) => !f.padding).map((f) => `${f.path.join('/')}:${f.length}`).sort();
      expect(fileSet(ttMeta.files)).toEqual(fileSet(ltMeta.files));
      expect(ttMeta.totalLength).toBe(ltMeta.totalLength);
      expect(ttMeta.pieceCount).toBe(ltMeta.pieceCount);
      // libtorrent lists a folder in directory order, tt sorts: only one file fixes the order
      if (!ttMeta.multiFile) expect(ttMeta.infoHashHex).toBe(ltHash);
    }
  });
});

/** A single-file torrent whose info keys are NOT in sorted order (valid for SHA-1 of raw bytes). */
function unsortedKeysTorrent(): Buffer {
  const data = Buffer.from('unsorted keys must be hashed as they stand in the file\n');
  const pieceLength = 16 * 1024;
  const pieces = createHash('sha1').update(data).digest();
  const parts: Buffer[] = [
    Buffer.from(`d8:announce${TRACKER.length}:${TRACKER}4:infod`),
    // sorted order would be: length, name, piece length, pieces
    Buffer.from(`4:name12:unsorted.txt12:piece lengthi${pieceLength}e6:pieces20:`),
    pieces,
    Buffer.from(`6:lengthi${data.length}e`),
    Buffer.from('ee'),
  ];
  return Buffer.concat(parts);
}

function rawInfoSha1(bytes: Buffer): string {
  const start = bytes.indexOf('4:infod') + '4:info'.length;
  // our crafted torrent ends with the info dict's 'e' then the outer 'e'
  return createHash('sha1').update(bytes.subarray(start, bytes.length - 1)).digest('hex');
}

describe('unsorted info keys', () => {
  it('tt hashes the raw info bytes, as libtorrent does', async () => {
    const bytes = unsortedKeysTorrent();
    const out = join(dir, 'unsorted.torrent');
    await writeFile(out, bytes);
    const lt = await ltInfoHash(out);
    expect(lt).toBe(rawInfoSha1(bytes));
    expect(parseTorrent(bytes).infoHashHex).toBe(lt);
  });

  const fixtureFiles = existsSync(FIXTURES_DIR)
    ? readdirSync(FIXTURES_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => /unsorted.*\.torrent$/i.test(f))
    : [];
  for (const f of fixtureFiles) {
    it(`fixture ${f}: tt's hash equals libtorrent's`, async () => {
      const path = join(FIXTURES_DIR.pathname, f);
      expect(parseTorrent(await readFile(path)).infoHashHex).toBe(await ltInfoHash(path));
    });
  }
});
