/**
 * Web seeds through the built binary: a magnet link's ws= web seed is used
 * once the metadata has come from a peer, and `tt info` / `tt create` print
 * magnet links that carry the torrent's web seeds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeFixture, expectSameData, startSession, stopAll, trackDir } from '../../helpers/swarm.js';
import { startWebSeedServer, type WebSeedServer } from '../../helpers/web-seed-server.js';
import { LOOPBACK, expectErrorLastLine, killAllTt, runTt } from './tt-cli.js';

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

  it('a torrent whose only source is a web seed with credentials: exit 5, one line saying why, the password never shown', async () => {
    const fx = await makeFixture({ urlList: ['http://alice:s3cret@127.0.0.1:9/files/'] }); // no trackers
    trackDir(fx.work);
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK]);
    expect(p.exit?.code, p.describe()).toBe(5);
    const line = expectErrorLastLine(p, /no way to find peers: the torrent lists no trackers and its web seeds cannot be used \(http:\/\/127\.0\.0\.1:9\/files\/ not used: it carries a user name or password/);
    expect(p.stderr).not.toMatch(/alice|s3cret/);
  });

  it('with --no-web-seeds and nothing else, the error names the flag', async () => {
    const fx = await makeFixture({ urlList: ['http://127.0.0.1:9/files/'] });
    trackDir(fx.work);
    const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--no-web-seeds']);
    expect(p.exit?.code, p.describe()).toBe(5);
    expectErrorLastLine(p, /no trackers and --no-web-seeds; use --dht/);
  });

  it('a web seed tt will not use is named in a warning, and the download goes on from a peer', async () => {
    const fx = await makeFixture({ urlList: ['ftp://127.0.0.1/files/', 'http://bob:pw@127.0.0.1:9/'] });
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--peer', `127.0.0.1:${seed.address.port}`, '--json'], 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    await expectSameData(fx, out);
    const warnings = p.events.filter((e) => e.event === 'warning').map((e) => e.message);
    expect(warnings).toEqual([
      'web seed ftp://127.0.0.1/files/ not used: ftp: is not http or https',
      'web seed http://127.0.0.1:9/ not used: it carries a user name or password, which tt never sends',
    ]);
  });
});
