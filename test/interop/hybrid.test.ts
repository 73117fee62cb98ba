/**
 * Hybrid torrents (BEP 52 v1+v2 in one info dictionary, files aligned by BEP 47
 * padding files), as libtorrent 2.0 and qBittorrent make them by default: tt
 * agrees on the v1 info hash, seeds them from the creator's folder (which has no
 * pad files) to a libtorrent leecher, and downloads them from a libtorrent seeder
 * without leaving pad files behind. Loopback only; bytes compared with the source.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Metainfo } from '../../src/metainfo/metainfo.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { assertSameTree, writeMultiFileData } from '../helpers/clients/data.js';
import { ltCreate, ltDownload, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { killAll, startProcess } from '../helpers/clients/process.js';
import { TT_BIN, startTtDownload, startTtSeeder } from '../helpers/clients/tt.js';
import { BLOCK_SIZE } from '../../src/core/geometry.js';

const PIECE_LENGTH = 32 * 1024;
const DOWNLOAD_TIMEOUT_MS = 60_000;

let dir: string;
let source: string;
let torrent: string;
let meta: Metainfo;
let ltHash: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-interop-hybrid-'));
  source = await writeMultiFileData(dir, 'multi');
  torrent = join(dir, 'hybrid.torrent');
  ltHash = await ltCreate(source, torrent, { pieceLength: PIECE_LENGTH, hybrid: true });
  meta = parseTorrent(await readFile(torrent));
}, 60_000);

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('hybrid (v1+v2) torrents from libtorrent', () => {
  it('parse in tt with libtorrent v1 info hash, and really have padding files', () => {
    expect(meta.infoHashHex).toBe(ltHash);
    expect(meta.files.filter((f) => f.padding).length).toBeGreaterThan(0);
    for (const f of meta.files.filter((x) => !x.padding)) expect(f.offset % PIECE_LENGTH, f.path.join('/')).toBe(0);
  });

  it('tt seeds them from the original folder (no pad files on disk) to a libtorrent leecher', async () => {
    const seeder = await startTtSeeder(torrent, dir);
    expect(seeder.checked['have']).toBe(meta.pieceCount);
    const out = await mkdtemp(join(dir, 'out-lt-'));
    await ltDownload({ torrent, outDir: out, peers: [`127.0.0.1:${seeder.port}`], timeoutS: 60 });
    await assertSameTree(source, join(out, 'multi'), { strict: true });
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('small files in big pieces: tt never asks for the padding (as libtorrent), only the blocks that hold data', async () => {
    // 12 files of 10,000 B, 1 MiB pieces: each file is one piece, ~99% of it padding
    const layout = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}.bin`, 10_000]));
    const small = await writeMultiFileData(dir, 'small', layout);
    const smallTorrent = join(dir, 'small.torrent');
    await ltCreate(small, smallTorrent, { pieceLength: 1024 * 1024, hybrid: true });
    const smallMeta = parseTorrent(await readFile(smallTorrent));
    expect(smallMeta.files.filter((f) => f.padding).length).toBeGreaterThan(0);
    const seeder = await startLtSeeder({ torrent: smallTorrent, dataDir: dir });
    const out = await mkdtemp(join(dir, 'out-small-'));
    const tt = startProcess('tt download', process.execPath, [
      TT_BIN, 'download', smallTorrent, '--out', out, '--bind', '127.0.0.1', '--port', '0', '--no-trackers', '--peer', `127.0.0.1:${seeder.port}`, '--json',
    ]);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(small, join(out, 'small'), { strict: true });
    const done = tt.events.find((e) => e['event'] === 'done');
    // one 16 KiB block per file (10,000 B of data and the start of its padding); it was 12 MiB
    expect(done?.['downloaded'], tt.output()).toBeLessThanOrEqual(12 * BLOCK_SIZE);
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('tt downloads them from a libtorrent seeder and writes no pad files', async () => {
    const seeder = await startLtSeeder({ torrent, dataDir: dir });
    const out = await mkdtemp(join(dir, 'out-tt-'));
    const tt = startTtDownload({ torrent, outDir: out, extraArgs: ['--no-trackers', '--peer', `127.0.0.1:${seeder.port}`] });
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    // strict: nothing but the torrent's real files (no .pad folder)
    await assertSameTree(source, join(out, 'multi'), { strict: true });
  }, DOWNLOAD_TIMEOUT_MS + 60_000);
});
