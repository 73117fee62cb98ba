/**
 * Web seeds through the built binary: a magnet link's ws= web seed is used
 * once the metadata has come from a peer, and `tt info` / `tt create` print
 * magnet links that carry the torrent's web seeds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeFixture, expectSameData, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { startWebSeedServer, type WebSeedServer } from '../../helpers/web-seed-server.js';
import { LOOPBACK, killAllTt, runTt } from './tt-cli.js';

const servers: WebSeedServer[] = [];
afterEach(async () => {
  await killAllTt();
  await stopAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('web seeds from the command line', () => {
  it("a magnet link's ws= web seed serves the data once a peer has sent the metadata", async () => {
    const http = await startWebSeedServer();
    servers.push(http);
    const fx = await makeFixture({ pieceLength: 32_768 });
    trackDir(fx.work);
    http.serve(fx.seedRoot);
    // the peer sends the metadata at once, the data only slowly
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 32 * 1024 });
    const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}&x.pe=127.0.0.1:${seed.address.port}&ws=${encodeURIComponent(http.url())}`;
    const out = join(fx.work, 'out');
    const p = await runTt(['download', magnet, '--out', out, ...LOOPBACK, '--no-trackers', '--json'], 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    await expectSameData(fx, out);
    const done = p.events.find((e) => e.event === 'done')!;
    expect(done.webSeedBytes as number, p.stderr + JSON.stringify(http.requests.slice(0, 20))).toBeGreaterThan(fx.meta.totalLength / 2);
    expect(http.requests.length).toBeGreaterThan(0);
  });

  it('tt info prints a magnet link with the web seeds (ws=)', async () => {
    const fx = await makeFixture({ urlList: ['http://127.0.0.1:8080/files/'] });
    trackDir(fx.work);
    const p = await runTt(['info', fx.torrentPath, '--json']);
    expect(p.exit?.code, p.describe()).toBe(0);
    const doc = JSON.parse(p.stdout) as { magnet: string; webSeeds: string[] };
    expect(doc.webSeeds).toEqual(['http://127.0.0.1:8080/files/']);
    expect(doc.magnet).toContain(`&ws=${encodeURIComponent('http://127.0.0.1:8080/files/')}`);
  });
});
