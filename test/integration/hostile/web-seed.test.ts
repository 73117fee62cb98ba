/**
 * Hostile and careless BEP 19 web seeds against in-process tt sessions, all on
 * 127.0.0.x: endless bodies (206 and 200), gzip despite `identity`, a 206 whose
 * Content-Range total lies, redirects (file:, another loopback host, a URL
 * with credentials), a url-list of 1,000 entries with junk in it, credentials
 * in the url-list, a server sending 1 byte/s (the peer completes; stop() is
 * prompt), one that closes mid-body, one serving a file shorter than the
 * torrent says, a lone piece crossing 200 small files (one request open at
 * a time), --select (only wanted pieces are asked for) and a private torrent.
 * Each server here is scripted per test (node:http); every request is logged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { decode, encode, type BDict } from '../../../src/metainfo/bencode.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { FileSelection } from '../../../src/metainfo/selection.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

type Range = [number, number] | undefined;
type Handler = (req: IncomingMessage, res: ServerResponse, range: Range, data: Buffer) => void;
interface Logged {
  path: string;
  range: string | undefined;
  auth: string | undefined;
}

const servers: Server[] = [];
const timers: NodeJS.Timeout[] = [];
afterEach(async () => {
  await stopAll();
  for (const t of timers.splice(0)) clearInterval(t);
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** An HTTP server on `host` whose every answer is `handler`'s; `data(path)` is the file a path names. */
async function serve(handler: Handler, data: (path: string) => Buffer, host = '127.0.0.1'): Promise<{ port: number; log: Logged[]; open: () => number }> {
  const log: Logged[] = [];
  let open = 0;
  const s = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    log.push({ path, range: req.headers.range, auth: req.headers.authorization });
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    handler(req, res, m ? [Number(m[1]), Number(m[2])] : undefined, data(path));
  });
  s.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, r));
  return { port: (s.address() as { port: number }).port, log, open: () => open };
}

/** An honest range server. */
const honest: Handler = (_req, res, range, data) => {
  if (!range) return void res.writeHead(200, { 'content-length': data.length }).end(data);
  const end = Math.min(range[1], data.length - 1);
  if (range[0] > end) return void res.writeHead(416).end();
  const body = data.subarray(range[0], end + 1);
  res.writeHead(206, { 'content-range': `bytes ${range[0]}-${end}/${data.length}`, 'content-length': body.length }).end(body);
};

/** Writes `chunk` every `ms` until the client goes away. */
function trickle(res: ServerResponse, ms: number, chunk: (i: number) => Buffer): void {
  let i = 0;
  const t = setInterval(() => res.write(chunk(i++)), ms);
  timers.push(t);
  res.on('close', () => clearInterval(t));
}

const SIZE = 300_000;
const PIECE = 32_768;

/** A single-file torrent (payload) whose url-list is urls(port of a server running handler). */
async function webSeeded(handler: Handler, urls: (port: number) => string[] = (p) => [`http://127.0.0.1:${p}/payload`]) {
  let fx: Fixture | undefined;
  const http = await serve(handler, () => fx!.files[0]!.data);
  fx = await makeFixture({ files: [{ path: ['d.bin'], size: SIZE }], single: true, pieceLength: PIECE, urlList: urls(http.port) });
  trackDir(fx.work);
  return { fx, http };
}

/** A download of `meta` into fx.work/out, from the web seed and optionally a slow tt seed; warnings collected. */
async function download(fx: Fixture, opts: { peer?: boolean; meta?: Metainfo; selection?: FileSelection } = {}) {
  const peers: Running['address'][] = [];
  if (opts.peer) peers.push((await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 200_000 })).address);
  const out = join(fx.work, 'out');
  const warnings: string[] = [];
  const dropped: string[] = [];
  const leech = await startSession({ meta: opts.meta ?? fx.meta, root: out, mode: 'download', useTrackers: false, peers, selection: opts.selection }, (s) => {
    s.on('warning', (w) => warnings.push(w));
    s.on('web-seed-dropped', (_url, reason) => dropped.push(reason));
  });
  return { leech, out, warnings, dropped };
}

describe('hostile web seeds: the answer', () => {
  it('an endless 206 body and an endless 200 are refused or cut; the peer completes the download', async () => {
    for (const status of [206, 200] as const) {
      const { fx, http } = await webSeeded((_q, res, range) => {
        res.writeHead(status, status === 206 ? { 'content-range': `bytes ${range![0]}-${range![1]}/${SIZE}` } : {});
        trickle(res, 1, () => Buffer.alloc(64 * 1024, 0x55));
      });
      const { leech, out, warnings, dropped } = await download(fx, { peer: true });
      await whenComplete(leech.session, 20_000);
      await expectSameData(fx, out);
      expect(http.log.length).toBeGreaterThan(0);
      // refused ("more than the N bytes asked for", "ignores Range"; a request queued on a socket the
      // refusal closed reports ECONNRESET), or for a 200 from byte 0 cut at 32 KiB and failed by its hash
      expect([...warnings, ...dropped].some((w) => /more than the \d+ bytes|ignores Range|ECONNRESET|corrupt|hash/i.test(w)), warnings.join('\n')).toBe(true);
      const s = leech.session.stats();
      expect(s.webSeedBytes).toBeLessThanOrEqual(status === 206 ? 0 : PIECE);
      expect(s.failedPieces).toBeLessThanOrEqual(status === 206 ? 0 : 1);
      await stopAll();
      await until(() => http.open() === 0, 2_000, 'the endless replies to be closed');
    }
  });

  it('gzip despite Accept-Encoding: identity is not taken as the bytes; no piece fails, the peer completes', async () => {
    const { fx, http } = await webSeeded((_q, res, range, data) => {
      const body = gzipSync(data.subarray(range![0], range![1] + 1));
      res.writeHead(206, { 'content-encoding': 'gzip', 'content-range': `bytes ${range![0]}-${range![1]}/${SIZE}`, 'content-length': body.length }).end(body);
    });
    const { leech, out, warnings } = await download(fx, { peer: true });
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    expect(http.log.every((r) => r.range !== undefined)).toBe(true);
    expect(warnings.some((w) => /more than the \d+ bytes|bytes, then the reply ended|ECONNRESET/.test(w)), warnings.join('\n')).toBe(true);
    expect(leech.session.stats()).toMatchObject({ failedPieces: 0, bannedPeers: 0, webSeedBytes: 0 });
  });

  it('a 206 whose Content-Range total lies (the range itself right) is used: the hashes are the judge', async () => {
    const { fx } = await webSeeded((_q, res, range, data) => {
      const body = data.subarray(range![0], range![1] + 1);
      res.writeHead(206, { 'content-range': `bytes ${range![0]}-${range![1]}/7`, 'content-length': body.length }).end(body);
    });
    const { leech, out } = await download(fx);
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, out);
    expect(leech.session.stats().webSeedBytes).toBe(SIZE);
  });

  it('a file shorter than the torrent says: its missing pieces are refused, the rest is used, the peer completes', async () => {
    const { fx, http } = await webSeeded((q, res, range, data) => honest(q, res, range, data.subarray(0, 200_000)));
    const { leech, out, warnings } = await download(fx, { peer: true });
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    expect(http.log.length).toBeGreaterThan(0);
    if (http.log.some((r) => Number(/=(\d+)/.exec(r.range ?? '')?.[1]) >= 200_000 - PIECE)) {
      expect(warnings.some((w) => /Content-Range|HTTP 416|ECONNRESET/.test(w)), warnings.join('\n')).toBe(true);
    }
    expect(leech.session.stats()).toMatchObject({ failedPieces: 0, bannedPeers: 0 });
  });

  it('a server that closes mid-body is retried after its backoff and completes the download alone', async () => {
    let resets = 0;
    const { fx } = await webSeeded((q, res, range, data) => {
      if (resets++ >= 2) return honest(q, res, range, data);
      res.writeHead(206, { 'content-range': `bytes ${range![0]}-${range![1]}/${SIZE}`, 'content-length': range![1] - range![0] + 1 });
      res.write(data.subarray(range![0], range![0] + 100));
      setTimeout(() => res.destroy(), 20);
    });
    const { leech, out, warnings, dropped } = await download(fx);
    await whenComplete(leech.session, 25_000); // the first retry comes after 5 s
    await expectSameData(fx, out);
    expect(warnings.some((w) => /ECONNRESET|reply ended|aborted/.test(w)), warnings.join('\n')).toBe(true);
    expect(dropped).toEqual([]);
  });

  it('1 byte per second: the peer completes the download, and stop() ends the trickle at once', async () => {
    const { fx, http } = await webSeeded((_q, res, range, data) => {
      res.writeHead(206, { 'content-range': `bytes ${range![0]}-${range![1]}/${SIZE}`, 'content-length': range![1] - range![0] + 1 });
      trickle(res, 1_000, (i) => data.subarray(range![0] + i, range![0] + i + 1));
    });
    const { leech, out } = await download(fx, { peer: true });
    await whenComplete(leech.session, 20_000); // endgame copies the web seed's blocks to the peer
    await expectSameData(fx, out);
    expect(http.open()).toBeGreaterThan(0); // the trickle is still going
    const t0 = Date.now();
    await leech.session.stop();
    expect(Date.now() - t0).toBeLessThan(2_000);
    await until(() => http.open() === 0, 2_000, 'the web seed connections to close');
  });
});

describe('hostile web seeds: redirects and URLs', () => {
  it('a redirect to file: is refused; the peer completes the download', async () => {
    const { fx } = await webSeeded((_q, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    const { leech, out, warnings } = await download(fx, { peer: true });
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    expect(warnings.some((w) => w.includes('redirected to a file: URL')), warnings.join('\n')).toBe(true);
  });

  it('a redirect to another host is followed (here 127.0.0.2: tt has no same-host rule, as libtorrent)', async () => {
    let fx: Fixture | undefined;
    const other = await serve(honest, () => fx!.files[0]!.data, '127.0.0.2');
    const made = await webSeeded((_q, res) => res.writeHead(302, { location: `http://127.0.0.2:${other.port}/elsewhere` }).end());
    fx = made.fx;
    const { leech, out } = await download(fx);
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, out);
    expect(other.log.length).toBeGreaterThan(0);
    expect(other.log.every((r) => r.path === '/elsewhere')).toBe(true);
  });

  // node:http turns user:pass@ in a URL into an Authorization header: a redirect must not smuggle in the
  // credentials the url-list itself may not carry
  it('a redirect to a URL with credentials is followed without them: no Authorization header', async () => {
    const { fx, http } = await webSeeded((q, res, range, data) => {
      if (q.url !== '/real') return void res.writeHead(302, { location: `http://user:secret@127.0.0.1:${q.socket.localPort}/real` }).end();
      honest(q, res, range, data);
    });
    const { leech, out } = await download(fx);
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, out);
    expect(http.log.some((r) => r.path === '/real')).toBe(true);
    expect(http.log.filter((r) => r.auth !== undefined)).toEqual([]);
  });

  it('credentials in the url-list: that web seed is never asked; with no other source the download is refused', async () => {
    const { fx, http } = await webSeeded(honest, (p) => [`http://user:pw@127.0.0.1:${p}/payload`]);
    await expect(download(fx)).rejects.toThrow(/no way to find peers/);
    const { leech, out } = await download(fx, { peer: true });
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    expect(http.log).toEqual([]);
  });

  it('1,000 url-list entries with junk among them: only the first 8 usable distinct ones are asked', async () => {
    const { fx: base, http } = await webSeeded(honest, () => []);
    const junk = ['ftp://127.0.0.1/x', `http://u:p@127.0.0.1:${http.port}/creds/`, 'file:///etc/', 'not a url', `http://127.0.0.1:${http.port}/s0/`];
    const urls = [...junk, ...Array.from({ length: 995 }, (_, i) => `http://127.0.0.1:${http.port}/s${i}/`)];
    // entries that are not strings at all, next to the strings
    const root = decode(base.torrent) as BDict;
    root.set('url-list', [42, new Map([['x', 1]]), [Buffer.from('http://127.0.0.1:1/nested/')], ...urls.map((u) => Buffer.from(u))]);
    const meta = parseTorrent(encode(root));
    expect(meta.infoHash.equals(base.meta.infoHash)).toBe(true);
    expect(meta.urlList.length).toBe(urls.length - 1); // 'not a url' has a space; the rest are strings
    const fx: Fixture = { ...base, meta, files: base.files };
    http.log.length = 0;
    const { leech, out } = await download(fx, { meta });
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
    const prefixes = new Set(http.log.map((r) => r.path.split('/')[1]));
    expect([...prefixes].every((p) => /^s[0-7]$/.test(p!)), [...prefixes].join(',')).toBe(true);
  });
});

describe('web seeds with --select and private torrents', () => {
  it('a lone piece crossing 200 small files: one request open at a time (none waits for a socket), complete', async () => {
    let fx: Fixture | undefined;
    let open = 0;
    let most = 0;
    const http = await serve((q, res, range, data) => {
      most = Math.max(most, ++open);
      res.on('close', () => open--);
      setTimeout(() => honest(q, res, range, data), 5);
    }, (path) => fx!.files.find((f) => `/many/${f.path.join('/')}` === path)?.data ?? Buffer.alloc(0));
    fx = await makeFixture({ name: 'many', files: Array.from({ length: 200 }, (_, i) => ({ path: [`f${i}`], size: 100 })), pieceLength: PIECE, urlList: [`http://127.0.0.1:${http.port}/`] });
    trackDir(fx.work);
    expect(fx.meta.pieceCount).toBe(1);
    const { leech, out } = await download(fx);
    await whenComplete(leech.session, 20_000);
    await expectSameData(fx, out);
    expect(http.log).toHaveLength(200);
    expect(most).toBe(1);
  });

  it('--select: only the wanted pieces are asked for (shared ones whole)', async () => {
    let fx: Fixture | undefined;
    const http = await serve(honest, (path) => fx!.files.find((f) => `/payload/${f.path.join('/')}` === path)?.data ?? Buffer.alloc(0));
    fx = await makeFixture({ pieceLength: PIECE, urlList: [`http://127.0.0.1:${http.port}/`] }); // ODD_FILES
    trackDir(fx.work);
    const meta = fx.meta;
    const selection = new FileSelection(meta, meta.files.map((_, i) => i === 3)); // sub/deeper/c.bin
    const { leech, out } = await download(fx, { selection });
    await whenComplete(leech.session, 10_000);
    const asked = new Set<number>();
    for (const r of http.log) {
      const file = meta.files.find((f) => `/${f.path.join('/')}` === r.path)!;
      const [a, b] = /=(\d+)-(\d+)/.exec(r.range!)!.slice(1).map(Number) as [number, number];
      for (let p = Math.floor((file.offset + a) / PIECE); p <= Math.floor((file.offset + b) / PIECE); p++) asked.add(p);
    }
    expect([...asked].sort((x, y) => x - y)).toEqual([...selection.wanted.indices()]);
    expect(leech.session.stats()).toMatchObject({ wantedLeft: 0, webSeedBytes: selection.wantedBytes });
    expect(existsSync(join(out, 'payload', 'z.bin'))).toBe(false);
  });

  it('a private torrent still uses its web seed (BEP 27 is about peers)', async () => {
    const { fx, http } = await webSeeded(honest);
    const { leech, out } = await download(fx, { meta: { ...fx.meta, private: true } });
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, out);
    expect(http.log.length).toBeGreaterThan(0);
  });
});
