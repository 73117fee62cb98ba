/**
 * Magnet links against real clients (BEP 9 ut_metadata over BEP 10, BEP 3 over TCP, all on
 * 127.0.0.1): `tt download magnet:?...` fetches the info dictionary from a libtorrent seeder
 * found through opentracker and from an aria2c seeder given with --peer, then downloads it;
 * a libtorrent leecher fetches the metadata and the data from `tt seed`; and tt gives up
 * (exit 5, NO_PEERS, nothing written) when its only peer does not serve the metadata.
 * The multi-file torrent with odd file sizes; bytes on disk compared with the source.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { startAria2Seeder } from '../helpers/clients/aria2.js';
import { assertSameTree } from '../helpers/clients/data.js';
import { startLtLeecher, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { freePort, startProcess, type ManagedProcess } from '../helpers/clients/process.js';
import { scrape, waitForSeeders } from '../helpers/clients/tracker-wait.js';
import { TT_BIN, startTtSeeder } from '../helpers/clients/tt.js';

const DOWNLOAD_TIMEOUT_MS = 60_000;
/** tt's --peer-timeout in the download tests: also bounds the metadata phase. */
const PEER_TIMEOUT_S = 30;
const LEECH_TIMEOUT_S = 60;
/** The negative test's --peer-timeout, and how long tt may take to give up after it. */
const NO_METADATA_TIMEOUT_S = 5;
const NO_METADATA_EXIT_MS = 20_000;

/** Length of the bencoded info dictionary: what a ut_metadata fetch must deliver. */
let infoBytes: number;

const t = useTrackedTorrent('tt-interop-magnet-');

beforeAll(async () => {
  // libtorrent writes sorted keys and "info" is the last one: the info dictionary runs from
  // after "4:info" to the outer dictionary's final "e". Checked against the info hash.
  const raw = await readFile(t.torrent);
  const at = raw.indexOf('4:info');
  const info = raw.subarray(at + '4:info'.length, raw.length - 1);
  if (at < 0 || createHash('sha1').update(info).digest('hex') !== t.infoHash) {
    throw new Error(`cannot locate the info dictionary of ${t.torrent}`);
  }
  infoBytes = info.length;
});

function magnetOf(opts: { tracker?: string } = {}): string {
  const tr = opts.tracker !== undefined ? `&tr=${encodeURIComponent(opts.tracker)}` : '';
  return `magnet:?xt=urn:btih:${t.infoHash}&dn=multi${tr}`;
}

/** `tt download <magnet> --json --verbose` on 127.0.0.1, plus extra flags. */
function startTtMagnet(magnet: string, out: string, extra: readonly string[]): ManagedProcess {
  return startProcess('tt download', process.execPath, [
    TT_BIN, 'download', magnet, '--out', out, '--bind', '127.0.0.1', '--port', '0', '--json', '--verbose', ...extra,
  ]);
}

/** The metadata phase ran first and delivered exactly the torrent's info dictionary. */
function expectMetadataEvents(tt: ManagedProcess): void {
  const names = tt.events.map((e) => e['event']);
  const fetching = names.indexOf('metadata-fetching');
  const got = names.indexOf('metadata');
  expect(fetching, tt.output()).toBeGreaterThanOrEqual(0);
  expect(got, tt.output()).toBeGreaterThan(fetching);
  const metadata = tt.events[got]!;
  expect(metadata['infoHash']).toBe(t.infoHash);
  expect(metadata['bytes']).toBe(infoBytes);
  expect(names.lastIndexOf('done'), tt.output()).toBeGreaterThan(got);
}

describe('magnet links with real clients (BEP 9 ut_metadata)', () => {
  it('tt downloads a magnet whose tracker lists a libtorrent seeder', async () => {
    const base = (await scrape(t.tracker.httpUrl, t.infoHash)).complete;
    await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, metadata: true });
    await waitForSeeders(t.tracker.httpUrl, t.infoHash, base + 1);
    const out = await mkdtemp(join(t.dir, 'out-lt-tracker-'));
    const tt = startTtMagnet(magnetOf({ tracker: t.tracker.httpUrl }), out, ['--peer-timeout', String(PEER_TIMEOUT_S)]);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
    expectMetadataEvents(tt);
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('tt downloads a magnet from an aria2c seeder given with --peer (no trackers)', async () => {
    const port = await freePort();
    await startAria2Seeder({ torrent: t.torrent, dataDir: t.seedDir, port });
    const out = await mkdtemp(join(t.dir, 'out-aria2-'));
    const tt = startTtMagnet(magnetOf(), out, [
      '--no-trackers', '--peer', `127.0.0.1:${port}`, '--peer-timeout', String(PEER_TIMEOUT_S),
    ]);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
    expectMetadataEvents(tt);
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('a libtorrent leecher downloads a magnet from tt seed (metadata and data from tt only)', async () => {
    const seeder = await startTtSeeder(t.torrent, t.seedDir);
    const out = await mkdtemp(join(t.dir, 'out-lt-leech-'));
    // no tr= in the magnet: tt is libtorrent's only source of the info dictionary
    const lt = startLtLeecher({ torrent: magnetOf(), outDir: out, peers: [`127.0.0.1:${seeder.port}`], timeoutS: LEECH_TIMEOUT_S });
    await lt.expectSuccess(LEECH_TIMEOUT_S * 1000 + 15_000);
    const metadata = lt.events.find((e) => e['event'] === 'metadata');
    expect(metadata, lt.output()).toMatchObject({ name: 'multi', numPieces: t.pieceCount });
    expect(lt.events.some((e) => e['event'] === 'done'), lt.output()).toBe(true);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
  }, (LEECH_TIMEOUT_S + 60) * 1000);

  it('tt exits 5 (NO_PEERS), writing nothing, when its only peer does not serve the metadata', async () => {
    const seeder = await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, metadata: false });
    const out = await mkdtemp(join(t.dir, 'out-no-metadata-'));
    const started = Date.now();
    const tt = startTtMagnet(magnetOf({ tracker: t.tracker.httpUrl }), out, [
      '--no-trackers', '--peer', `127.0.0.1:${seeder.port}`, '--peer-timeout', String(NO_METADATA_TIMEOUT_S),
    ]);
    let stderr = '';
    tt.child.stderr?.on('data', (s: string) => (stderr += s));
    const status = await tt.waitForExit(NO_METADATA_TIMEOUT_S * 1000 + NO_METADATA_EXIT_MS);
    const elapsedMs = Date.now() - started;
    expect(status.code, tt.output()).toBe(5);
    expect(elapsedMs).toBeLessThan(NO_METADATA_TIMEOUT_S * 1000 + NO_METADATA_EXIT_MS);
    // the failure is the missing metadata, not an unreachable peer: tt did connect to libtorrent
    const connected = tt.events.filter(
      (e) => e['event'] === 'info' && String(e['message']).includes(`:${seeder.port}`) && String(e['message']).includes('connected'),
    );
    expect(connected.length, tt.output()).toBeGreaterThan(0);
    expect(tt.events.some((e) => e['event'] === 'metadata'), tt.output()).toBe(false);
    const lines = stderr.split('\n').filter((l) => l.length > 0);
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^tt: .*metadata/);
    expect(await readdir(out)).toEqual([]);
  }, NO_METADATA_TIMEOUT_S * 1000 + NO_METADATA_EXIT_MS + 30_000);
});
