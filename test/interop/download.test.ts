/**
 * `tt download` against real seeders (BEP 3 over TCP, tracker = opentracker on 127.0.0.1):
 * libtorrent and aria2c seeding at the same time, then each alone. A multi-file torrent with
 * odd file sizes (pieces crossing files, a zero-length file); bytes on disk compared with the source.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { startAria2Seeder } from '../helpers/clients/aria2.js';
import { assertSameTree } from '../helpers/clients/data.js';
import { startLtSeeder } from '../helpers/clients/libtorrent.js';
import { freePort, killAll, startProcess } from '../helpers/clients/process.js';
import { scrape, waitForSeeders } from '../helpers/clients/tracker-wait.js';
import { TT_BIN, TT_START_TIMEOUT_MS, startTtDownload } from '../helpers/clients/tt.js';

const DOWNLOAD_TIMEOUT_MS = 90_000;

const t = useTrackedTorrent('tt-interop-download-');

async function ttDownloadAndVerify(label: string): Promise<void> {
  const out = await mkdtemp(join(t.dir, `out-${label}-`));
  const tt = startTtDownload({ torrent: t.torrent, outDir: out });
  await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
  await assertSameTree(t.source, join(out, 'multi'), { strict: true });
}

describe('tt download from real seeders via opentracker', () => {
  it('libtorrent and aria2c seeding at the same time', async () => {
    const base = (await scrape(t.tracker.httpUrl, t.infoHash)).complete;
    await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir });
    await startAria2Seeder({ torrent: t.torrent, dataDir: t.seedDir, port: await freePort() });
    await waitForSeeders(t.tracker.httpUrl, t.infoHash, base + 2);
    await ttDownloadAndVerify('both');
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  // the tracker still lists the seeders stopped after the test above: tt must skip dead peers
  it('libtorrent alone', async () => {
    const base = (await scrape(t.tracker.httpUrl, t.infoHash)).complete;
    await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir });
    await waitForSeeders(t.tracker.httpUrl, t.infoHash, base + 1);
    await ttDownloadAndVerify('lt');
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('aria2c alone', async () => {
    const base = (await scrape(t.tracker.httpUrl, t.infoHash)).complete;
    await startAria2Seeder({ torrent: t.torrent, dataDir: t.seedDir, port: await freePort() });
    await waitForSeeders(t.tracker.httpUrl, t.infoHash, base + 1);
    await ttDownloadAndVerify('aria2');
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('the verified copy is what the seeders serve: a fresh libtorrent check of tt output agrees', async () => {
    // tt's output, seeded by libtorrent, must pass libtorrent's own hash check
    const out = await mkdtemp(join(t.dir, 'out-recheck-'));
    const base = (await scrape(t.tracker.httpUrl, t.infoHash)).complete;
    await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir });
    await waitForSeeders(t.tracker.httpUrl, t.infoHash, base + 1);
    const tt = startTtDownload({ torrent: t.torrent, outDir: out });
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await killAll();
    const recheck = await startLtSeeder({ torrent: t.torrent, dataDir: out });
    expect(recheck.port).toBeGreaterThan(0); // startLtSeeder resolves only once libtorrent verified every piece
  }, DOWNLOAD_TIMEOUT_MS + 60_000);
});

describe('tt download when the seeder dials tt', () => {
  it('a libtorrent seeder connects to tt: the download runs over the incoming connection, bytes match', async () => {
    const out = await mkdtemp(join(t.dir, 'out-incoming-'));
    const ttPort = await freePort();
    // no tracker, and the only peer tt may dial listens nowhere: every byte has to come in
    // over the connection libtorrent opens
    const nobody = await freePort();
    const tt = startProcess('tt download', process.execPath, [
      TT_BIN, 'download', t.torrent, '--out', out, '--bind', '127.0.0.1', '--port', String(ttPort),
      '--no-trackers', '--peer', `127.0.0.1:${nobody}`, '--peer-timeout', '0', '--json', '--verbose',
    ]);
    await tt.waitForEventNamed('listening', TT_START_TIMEOUT_MS);
    const seeder = await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, peers: [`127.0.0.1:${ttPort}`] });
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });

    const connected = tt.events
      .filter((e) => e['event'] === 'info' && String(e['message']).endsWith(': connected'))
      .map((e) => String(e['message']));
    expect(connected.length, tt.output()).toBeGreaterThan(0);
    // libtorrent dialed from an ephemeral port: tt never connected to the seeder's listening port
    expect(connected.some((m) => m.includes(`:${seeder.port}:`)), tt.output()).toBe(false);
  }, DOWNLOAD_TIMEOUT_MS + 60_000);
});
