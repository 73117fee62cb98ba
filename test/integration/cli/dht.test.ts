/**
 * Finding peers through the DHT (BEP 5) from the command line, with no
 * tracker anywhere: `tt seed --dht-bootstrap` announces itself to a DHT node,
 * `tt download --dht-bootstrap` finds it there, by .torrent file and by a bare
 * magnet link (metadata from the seed), bytes compared. A private torrent
 * keeps off the DHT (BEP 27); a trackerless magnet without --dht says how to
 * find peers instead of waiting.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { patternBytes } from '../../helpers/torrent-factory.js';
import { closeDhtNodes, loopbackDhtNode } from '../../helpers/dht.js';
import { stopAll, trackDir } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
  await closeDhtNodes();
});

/** An in-process DHT node on loopback: the swarm's only meeting point. */
const router = () => loopbackDhtNode();

async function trackerless(extra: readonly string[] = []): Promise<{ work: string; torrent: string; data: Buffer; infoHash: Buffer }> {
  const work = await mkdtemp(join(tmpdir(), 'tt-dht-'));
  trackDir(work);
  const data = patternBytes(1_500_007, 11);
  await writeFile(join(work, 'payload.bin'), data);
  const torrent = join(work, 'payload.torrent');
  const created = await runTt(['create', join(work, 'payload.bin'), '-o', torrent, ...extra]);
  expect(created.exit?.code, created.describe()).toBe(0);
  const meta = parseTorrent(await readFile(torrent));
  expect(meta.announceList).toEqual([]);
  return { work, torrent, data, infoHash: meta.infoHash };
}

describe('the DHT from the command line', () => {
  it('a trackerless torrent: the seed announces to the DHT, the download finds it there (file and magnet)', async () => {
    const r = await router();
    const { work, torrent, data, infoHash } = await trackerless();
    const bootstrap = ['--dht-bootstrap', `127.0.0.1:${r.port}`];
    const seed = startTt(['seed', torrent, '--dir', work, ...LOOPBACK, ...bootstrap, '--json']);
    const started = await seed.waitForEvent('started', 15_000);
    const dhtEvent = await seed.waitForEvent('dht', 15_000);
    await seed.waitForEvent('dht-lookup', 15_000);
    // the router now holds the seed's TCP port for this info hash
    await until(() => r.store.values(infoHash, Date.now()).length > 0, 5_000, 'the seed announced itself');
    const stored = r.store.values(infoHash, Date.now())[0]!;
    expect(stored.readUInt16BE(4)).toBe(Number(started.port));
    expect(Number(dhtEvent.port)).toBeGreaterThan(0);

    const byFile = await runTt(['download', torrent, '--out', join(work, 'out1'), ...LOOPBACK, ...bootstrap, '--json'], 30_000);
    expect(byFile.exit?.code, byFile.describe()).toBe(0);
    expect((await readFile(join(work, 'out1', 'payload.bin'))).equals(data)).toBe(true);

    const magnet = `magnet:?xt=urn:btih:${infoHash.toString('hex')}`;
    const byMagnet = await runTt(['download', magnet, '--out', join(work, 'out2'), ...LOOPBACK, ...bootstrap, '--json'], 30_000);
    expect(byMagnet.exit?.code, byMagnet.describe()).toBe(0);
    expect(byMagnet.events.some((e) => e.event === 'metadata')).toBe(true);
    expect((await readFile(join(work, 'out2', 'payload.bin'))).equals(data)).toBe(true);
  });

  it('a private torrent never touches the DHT, even with --dht-bootstrap', async () => {
    const r = await router();
    const { work, torrent, infoHash } = await trackerless(['--private']);
    const seed = startTt(['seed', torrent, '--dir', work, ...LOOPBACK, '--dht-bootstrap', `127.0.0.1:${r.port}`, '--json']);
    await seed.waitForEvent('started', 15_000);
    expect(seed.events.some((e) => e.event === 'info' && /private torrent: the DHT is not used/.test(String(e.message)))).toBe(true);
    expect(seed.events.some((e) => e.event === 'dht')).toBe(false);
    // what a leak would look like: the router learning the seed's node or its announce
    await new Promise((res) => setTimeout(res, 1_500));
    expect(r.table.size).toBe(0);
    expect(r.store.values(infoHash, Date.now())).toEqual([]);
  });

  it('a bare magnet link without --dht: a one-line error that names --dht, exit 2', async () => {
    const magnet = `magnet:?xt=urn:btih:${'ab'.repeat(20)}`;
    const dl = await runTt(['download', magnet, '--out', join(tmpdir(), 'tt-dht-none'), ...LOOPBACK], 15_000);
    expect(dl.exit?.code, dl.describe()).toBe(2);
    expectOneErrorLine(dl, /--dht/);
  });
});
