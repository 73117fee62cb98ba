/**
 * BEP 19 web seeds over real HTTP on 127.0.0.1: a download with no peer at
 * all completes from a web seed (single-file and multi-file layouts, BEP 19
 * URL rules); with a peer too, both serve; a web seed that sends corrupt
 * bytes is found by the smart ban and dropped, one that fails is backed off,
 * and the download still completes from the peer; --no-web-seeds (webSeeds:
 * false) never asks it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type FileSpec } from '../../helpers/swarm.js';
import { startWebSeedServer, type WebSeedServer } from '../../helpers/web-seed-server.js';

const servers: WebSeedServer[] = [];
afterEach(async () => {
  await stopAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(): Promise<WebSeedServer> {
  const s = await startWebSeedServer();
  servers.push(s);
  return s;
}

/** A fixture whose url-list names `urls(server)`, served from its seed folder. */
async function fixture(http: WebSeedServer, urls: (s: WebSeedServer) => string[], files?: FileSpec[], single = false): Promise<Fixture> {
  const fx = await makeFixture({ ...(files ? { files } : {}), pieceLength: 32_768, urlList: urls(http), single });
  trackDir(fx.work);
  http.serve(fx.seedRoot);
  return fx;
}

describe('web seeds (BEP 19)', () => {
  it('a multi-file torrent with no peer at all completes from a folder URL (name/path appended)', async () => {
    const http = await server();
    const fx = await fixture(http, (s) => [s.url()]);
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false });
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
    expect(leech.session.stats().webSeedBytes).toBe(fx.meta.files.filter((f) => !f.padding).reduce((n, f) => n + f.length, 0));
    // every request was a range of one of the torrent's files, under <url>/<name>/<path>
    const paths = new Set(fx.files.map((f) => `/${fx.meta.name}/${f.path.join('/')}`));
    for (const r of http.requests) {
      expect(paths.has(r.path), r.path).toBe(true);
      expect(r.range).toMatch(/^bytes=\d+-\d+$/);
    }
  });

  it('a single-file torrent: a URL naming the file itself, and one naming its folder', async () => {
    for (const style of ['file', 'folder'] as const) {
      const http = await server();
      const fx = await fixture(http, (s) => [style === 'file' ? s.url('payload') : s.url()], [{ path: ['data.bin'], size: 300_001 }], true);
      expect(fx.meta.multiFile).toBe(false);
      const out = join(fx.work, `out-${style}`);
      const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false });
      await whenComplete(leech.session, 15_000);
      await expectSameData(fx, out);
      expect(new Set(http.requests.map((r) => r.path))).toEqual(new Set(['/payload']));
    }
  });

  it('with a peer as well: both serve, the data is whole', async () => {
    const http = await server();
    const fx = await fixture(http, (s) => [s.url()], [{ path: ['data.bin'], size: 4 * 1024 * 1024 }]);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 1024 * 1024 });
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] });
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    const s = leech.session.stats();
    expect(s.webSeedBytes).toBeGreaterThan(0);
    expect(s.webSeedBytes).toBeLessThan(fx.meta.totalLength); // the upload-limited peer sent some too
  });

  it('a web seed sending corrupt bytes is dropped by the smart ban; the peer completes the download', async () => {
    const http = await server();
    const fx = await fixture(http, (s) => [s.url()], [{ path: ['data.bin'], size: 1024 * 1024 }]);
    http.behave('corrupt');
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const dropped: string[] = [];
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] }, (session) =>
      session.on('web-seed-dropped', (url, reason) => dropped.push(`${url}: ${reason}`)),
    );
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatch(/corrupt/);
    const asked = http.requests.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(http.requests.length).toBe(asked); // never asked again
  });

  it.each(['ignore-range', 'wrong-range', 'too-long', 'error500'] as const)('a web seed that answers %s is backed off, the peer completes the download', async (behaviour) => {
    const http = await server();
    const fx = await fixture(http, (s) => [s.url()], [{ path: ['data.bin'], size: 1024 * 1024 }]);
    http.behave(behaviour);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const warnings: string[] = [];
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] }, (session) =>
      session.on('warning', (m) => warnings.push(m)),
    );
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
    if (behaviour !== 'ignore-range') {
      // one failure, then the back-off (5 s) outlasts this download: two requests at most (both in flight at first)
      expect(http.requests.length).toBeLessThanOrEqual(2);
      expect(warnings.some((w) => w.startsWith('web seed ') && /retrying later/.test(w))).toBe(true);
    }
  });

  it('webSeeds: false never asks the web seed; a torrent whose only source is a web seed is not refused at start', async () => {
    const http = await server();
    const fx = await fixture(http, (s) => [s.url(), 'ftp://127.0.0.1/x', 'not a url'], [{ path: ['data.bin'], size: 100_000 }]);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const off = await startSession({ meta: fx.meta, root: join(fx.work, 'off'), mode: 'download', useTrackers: false, peers: [seed.address], webSeeds: false });
    await whenComplete(off.session, 15_000);
    expect(http.requests).toEqual([]);
    expect(off.session.stats().webSeedBytes).toBe(0);
    const only = await startSession({ meta: fx.meta, root: join(fx.work, 'only'), mode: 'download', useTrackers: false });
    await whenComplete(only.session, 15_000);
    await expectSameData(fx, join(fx.work, 'only'));
  });

  it('every tracker failing is not fatal while a web seed serves', async () => {
    const http = await server();
    // a tracker on a port nobody listens on: refused at once, "every tracker failed"
    const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 300_000 }], pieceLength: 32_768, urlList: [http.url()], announce: 'http://127.0.0.1:9/announce' });
    trackDir(fx.work);
    http.serve(fx.seedRoot);
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download' });
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
  });

  it('a web seed that never answers does not hold the download: the peer completes it', async () => {
    const http = await server();
    const fx = await fixture(http, (s) => [s.url()], [{ path: ['data.bin'], size: 1024 * 1024 }]);
    http.behave('hang');
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] });
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
  });
});
