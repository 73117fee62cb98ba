/**
 * Proves the interop harness itself, with no tt code involved: real clients (libtorrent,
 * aria2c, Transmission) exchange a multi-file torrent through opentracker on 127.0.0.1 and the
 * bytes on disk match. If these pass, a failing tt interop test is tt's fault.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startOpentracker, type OpentrackerHandle } from '../helpers/opentracker.js';
import { aria2Download, startAria2Seeder } from '../helpers/clients/aria2.js';
import { assertSameTree, writeMultiFileData } from '../helpers/clients/data.js';
import { ltCreate, ltDownload, startLtLeecher, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { freePort, killAll, runningCount, startProcess } from '../helpers/clients/process.js';
import { startTransmission } from '../helpers/clients/transmission.js';
import { scrape, waitForSeeders } from '../helpers/clients/tracker-wait.js';

const PIECE_LENGTH = 32 * 1024;
const LAYOUT = {
  'a.bin': 300_003,
  'empty.txt': 0,
  'sub/b.bin': 65_537,
  'sub/deeper/c.bin': 7,
  'sub/d.bin': 700_001,
  'z.bin': 1,
};

let dir: string;
let source: string;
let torrent: string;
let infoHash: string;
let tracker: OpentrackerHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tt-harness-'));
  source = await writeMultiFileData(join(dir, 'seed'), 'multi', LAYOUT);
  // the info hash does not depend on the announce URL: learn it, whitelist it, then add the tracker
  infoHash = await ltCreate(source, join(dir, 'bare.torrent'), { pieceLength: PIECE_LENGTH });
  tracker = await startOpentracker([Buffer.from(infoHash, 'hex')]);
  torrent = join(dir, 'multi.torrent');
  expect(await ltCreate(source, torrent, { pieceLength: PIECE_LENGTH, trackers: [tracker.httpUrl] })).toBe(infoHash);
});

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  await tracker?.stop();
  await rm(dir, { recursive: true, force: true });
});

let outCounter = 0;
async function freshOut(label: string): Promise<string> {
  return mkdtemp(join(dir, `out-${label}-${outCounter++}-`));
}

describe('real clients on loopback', () => {
  it('libtorrent seeder -> aria2c leecher through opentracker', async () => {
    const base = (await scrape(tracker.httpUrl, infoHash)).complete;
    await startLtSeeder({ torrent, dataDir: join(dir, 'seed') });
    await waitForSeeders(tracker.httpUrl, infoHash, base + 1);
    const out = await freshOut('aria2');
    await aria2Download({ torrent, outDir: out, port: await freePort(), timeoutS: 60 });
    await assertSameTree(source, join(out, 'multi'));
  });

  it('libtorrent seeder -> libtorrent leecher through opentracker (no direct peer)', async () => {
    const seeder = await startLtSeeder({ torrent, dataDir: join(dir, 'seed') });
    const out = await freshOut('lt');
    const seconds = await ltDownload({ torrent, outDir: out, timeoutS: 60 });
    expect(seconds).toBeGreaterThan(0);
    await assertSameTree(source, join(out, 'multi'));
    await seeder.stop();
  });

  it('aria2c seeder -> libtorrent leecher: aria2 seeders are found through the tracker', async () => {
    const base = (await scrape(tracker.httpUrl, infoHash)).complete;
    const port = await freePort();
    await startAria2Seeder({ torrent, dataDir: join(dir, 'seed'), port });
    await waitForSeeders(tracker.httpUrl, infoHash, base + 1);
    const out = await freshOut('lt-from-aria2');
    // direct peer too, so only aria2 can serve it even if stale seeders linger in the swarm
    await ltDownload({ torrent, outDir: out, peers: [`127.0.0.1:${port}`], timeoutS: 60 });
    await assertSameTree(source, join(out, 'multi'));
  });

  it('libtorrent seeder connects to a Transmission leecher (Transmission ignores 127.x tracker peers)', async () => {
    const out = await freshOut('transmission');
    const port = await freePort();
    const tr = await startTransmission({ torrent, dir: out, port });
    try {
      await startLtSeeder({ torrent, dataDir: join(dir, 'seed'), peers: [`127.0.0.1:${port}`] });
      await tr.waitSeeding(50_000);
      // Transmission 3.00 does not create zero-length files
      await assertSameTree(source, join(out, 'multi'), { allowMissingEmpty: true });
    } finally {
      await tr.stop();
    }
  }, 90_000);

  it('a corrupt libtorrent seeder never lets a leecher complete (the harness can inject bad data)', async () => {
    const seeder = await startLtSeeder({ torrent, dataDir: join(dir, 'seed'), corrupt: true });
    const out = await freshOut('corrupt');
    // no tracker peers either way: only the corrupt seeder is given
    const leecher = startLtLeecher({ torrent: join(dir, 'bare.torrent'), outDir: out, peers: [`127.0.0.1:${seeder.port}`], timeoutS: 5 });
    const status = await leecher.waitForExit(20_000);
    expect(status.code).not.toBe(0);
    expect(leecher.output()).toMatch(/timeout after 5s: 0 of \d+ pieces/);
  });
});

describe('process helper', () => {
  it('waitForEvent rejects with the output when the process exits first', async () => {
    const p = startProcess('echo', process.execPath, ['-e', 'console.log(JSON.stringify({event:"a"})); console.error("boom")']);
    await expect(p.waitForEventNamed('b', 10_000)).rejects.toThrow(/exited \(code 0.*before event "b"[\s\S]*boom/);
    expect(p.events).toEqual([{ event: 'a' }]);
  });

  it('killAll ends a process that ignores SIGTERM (SIGKILL after the grace period)', async () => {
    const p = startProcess('stubborn', process.execPath, ['-e', 'process.on("SIGTERM",()=>{}); console.log("{\\"event\\":\\"up\\"}"); setInterval(()=>{},1000)']);
    await p.waitForEventNamed('up', 10_000);
    expect(runningCount()).toBeGreaterThan(0);
    await killAll();
    expect(p.exitStatusNow?.signal).toBe('SIGKILL');
    expect(runningCount()).toBe(0);
  });

  it('freePort gives a bindable loopback port', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65536);
  });
});
