/**
 * The DHT (BEP 5) against libtorrent's, all on 127.0.0.1, no tracker in play
 * (the torrent lists none and the magnet links carry no tr=):
 * - tt's lookup against libtorrent nodes: a libtorrent seeder announces to a
 *   libtorrent DHT node; `tt download <magnet> --dht-bootstrap` finds it there
 *   and fetches metadata and data from it.
 * - tt's announce against libtorrent's tokens: `tt seed --dht-bootstrap`
 *   announces to the libtorrent node, which records it; a libtorrent leecher
 *   finds tt there and downloads everything from it.
 * - libtorrent's queries against tt's node: a libtorrent seeder bootstraps
 *   from a tt DHT node and announces to it (a tt write token); tt finds the
 *   seeder through that node.
 * Bytes on disk compared with the source each time.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertSameTree } from '../helpers/clients/data.js';
import { startLtDhtNode, startLtLeecher, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { startProcess, type ManagedProcess } from '../helpers/clients/process.js';
import { useTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { TT_BIN, startTtSeeder } from '../helpers/clients/tt.js';
import { closeDhtNodes, loopbackDhtNode } from '../helpers/dht.js';
import { until } from '../helpers/until.js';

const DOWNLOAD_TIMEOUT_MS = 60_000;
const ANNOUNCE_TIMEOUT_MS = 30_000;
const LEECH_TIMEOUT_S = 60;

const t = useTrackedTorrent('tt-interop-dht-');
afterEach(closeDhtNodes);

/** The same files, in a torrent that names no tracker (made beside the tracked one). */
const bareTorrent = (): string => join(t.dir, 'bare.torrent');
const magnet = (): string => `magnet:?xt=urn:btih:${t.infoHash}&dn=multi`;

function startTtDownload(source: string, out: string, bootstrapPort: number): ManagedProcess {
  return startProcess('tt download', process.execPath, [
    TT_BIN, 'download', source, '--out', out, '--bind', '127.0.0.1', '--port', '0', '--json', '--verbose',
    '--dht-bootstrap', `127.0.0.1:${bootstrapPort}`, '--peer-timeout', '30',
  ]);
}

describe('the DHT with libtorrent (BEP 5)', () => {
  it('tt finds a libtorrent seeder through a libtorrent DHT node (magnet, no tracker)', async () => {
    const router = await startLtDhtNode();
    const seeder = await startLtSeeder({ torrent: bareTorrent(), dataDir: t.seedDir, metadata: true, dhtBootstrap: [`127.0.0.1:${router.port}`] });
    await seeder.proc.waitForEventNamed('dht-announce', ANNOUNCE_TIMEOUT_MS);
    const out = await mkdtemp(join(t.dir, 'out-tt-'));
    const tt = startTtDownload(magnet(), out, router.port);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
    // the data came from the seeder the DHT named
    const connected = tt.events.filter((e) => e['event'] === 'info' && String(e['message']).startsWith(`peer 127.0.0.1:${seeder.port}: connected`));
    expect(connected.length, tt.output()).toBeGreaterThan(0);
    expect(tt.events.some((e) => e['event'] === 'dht-lookup' && Number(e['peers']) > 0), tt.output()).toBe(true);
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('tt seed announces to a libtorrent DHT node; a libtorrent leecher finds tt there and downloads from it', async () => {
    const router = await startLtDhtNode();
    const seeder = await startTtSeeder(bareTorrent(), t.seedDir, ['--dht-bootstrap', `127.0.0.1:${router.port}`]);
    // libtorrent accepted tt's announce_peer (with the token it gave tt) and stored tt's TCP port
    await router.proc.waitForEvent((e) => e['event'] === 'dht-incoming-announce' && String(e['peer']).endsWith(`:${seeder.port}`), ANNOUNCE_TIMEOUT_MS);
    const out = await mkdtemp(join(t.dir, 'out-lt-'));
    const lt = startLtLeecher({ torrent: magnet(), outDir: out, dhtBootstrap: [`127.0.0.1:${router.port}`], timeoutS: LEECH_TIMEOUT_S });
    await lt.expectSuccess(LEECH_TIMEOUT_S * 1000 + 15_000);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
  }, (LEECH_TIMEOUT_S + 60) * 1000);

  it("a libtorrent seeder bootstraps from tt's DHT node and announces to it; tt finds it there", async () => {
    const ours = await loopbackDhtNode();
    const seeder = await startLtSeeder({ torrent: bareTorrent(), dataDir: t.seedDir, dhtBootstrap: [`127.0.0.1:${ours.port}`] });
    const infoHash = Buffer.from(t.infoHash, 'hex');
    // libtorrent asked our node for peers, got a token, and announced with it
    await until(() => ours.store.values(infoHash, Date.now()).some((c) => c.readUInt16BE(4) === seeder.port), ANNOUNCE_TIMEOUT_MS, "the seeder's announce");
    const out = await mkdtemp(join(t.dir, 'out-tt-ours-'));
    const tt = startTtDownload(bareTorrent(), out, ours.port);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
  }, DOWNLOAD_TIMEOUT_MS + 60_000);
});
