/**
 * tt's own tools for a private swarm, with real clients in it: a torrent made
 * by `tt create --private -t <tt tracker>`, the `tt tracker` process as the
 * only way to find peers, a libtorrent seeder announcing there, and aria2c and
 * tt downloading through it. Loopback only; bytes compared with the source.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { aria2Download } from '../helpers/clients/aria2.js';
import { assertSameTree, writeMultiFileData } from '../helpers/clients/data.js';
import { ltInfoHash, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { freePort, killAll, startProcess, type ManagedProcess } from '../helpers/clients/process.js';
import { TT_BIN, TT_START_TIMEOUT_MS, startTtDownload } from '../helpers/clients/tt.js';

const run = promisify(execFile);
const DOWNLOAD_TIMEOUT_MS = 60_000;

let dir: string;
let source: string;
let torrent: string;
let tracker: ManagedProcess;
let trackerUrl: string;
/** Processes of one test (the tracker outlives them all). */
const runningOthers = new Set<ManagedProcess>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-interop-private-'));
  source = await writeMultiFileData(dir, 'multi');
  tracker = startProcess('tt tracker', process.execPath, [TT_BIN, 'tracker', '--bind', '127.0.0.1', '--port', '0', '--interval', '5', '--json']);
  trackerUrl = String((await tracker.waitForEventNamed('listening', TT_START_TIMEOUT_MS))['httpUrl']);
  torrent = join(dir, 'multi.torrent');
  await run(process.execPath, [TT_BIN, 'create', source, '-o', torrent, '--private', '-t', trackerUrl, '--piece-length', '32KiB']);
}, 60_000);

afterEach(async () => {
  for (const p of [...runningOthers]) await p.kill();
  runningOthers.clear();
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('a private swarm built with tt create and tt tracker, real clients in it', () => {
  it('libtorrent reads the torrent tt made with the same info hash, and sees it private', async () => {
    const meta = parseTorrent(await readFile(torrent));
    expect(await ltInfoHash(torrent)).toBe(meta.infoHashHex);
    expect(meta.private).toBe(true);
    expect(meta.announce).toBe(trackerUrl);
  });

  it('a libtorrent seeder announces to tt tracker; aria2c and tt find it there and download every byte', async () => {
    const seeder = await startLtSeeder({ torrent, dataDir: dir });
    runningOthers.add(seeder.proc);
    const viaAria2 = await mkdtemp(join(dir, 'out-aria2-'));
    runningOthers.add(await aria2Download({ torrent, outDir: viaAria2, port: await freePort(), timeoutS: 60 }));
    await assertSameTree(source, join(viaAria2, 'multi'), { strict: false });
    const viaTt = await mkdtemp(join(dir, 'out-tt-'));
    const tt = startTtDownload({ torrent, outDir: viaTt });
    runningOthers.add(tt);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(source, join(viaTt, 'multi'), { strict: true });
  }, DOWNLOAD_TIMEOUT_MS * 2 + 30_000);
});
