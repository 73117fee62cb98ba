/**
 * webseed/fetch.ts against a local HTTP server: exactly the bytes asked for
 * from a 206, or from a 200 when the range starts at 0 (cut at its end);
 * every other answer is a WebSeedError: a 200 for a later range, a wrong
 * Content-Range, more bytes than asked, a body cut short, an HTTP error, a
 * redirect loop, a silent server (time budget), a non-HTTP redirect.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSeedError, fetchRange } from '../../../src/webseed/fetch.js';
import type { RangeRequest } from '../../../src/webseed/url.js';

const DATA = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 255));
let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

type Handler = (range: [number, number] | undefined, res: import('node:http').ServerResponse, path: string) => void;

async function serve(handler: Handler): Promise<string> {
  server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    handler(m ? [Number(m[1]), Number(m[2])] : undefined, res, req.url ?? '/');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/file`;
}

const honest: Handler = (range, res) => {
  if (!range) return void res.writeHead(200, { 'content-length': DATA.length }).end(DATA);
  const body = DATA.subarray(range[0], range[1] + 1);
  res.writeHead(206, { 'content-range': `bytes ${range[0]}-${range[1]}/${DATA.length}`, 'content-length': body.length }).end(body);
};

function req(url: string, start: number, end: number): RangeRequest {
  return { url, fileIndex: 0, start, end, torrentOffset: start };
}

async function failure(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WebSeedError);
  return (err as Error).message;
}

describe('fetchRange', () => {
  it('returns exactly the range from a 206', async () => {
    const url = await serve(honest);
    expect((await fetchRange(req(url, 100, 4099))).equals(DATA.subarray(100, 4100))).toBe(true);
    expect((await fetchRange(req(url, 4999, 4999))).equals(DATA.subarray(4999))).toBe(true);
  });

  it('a server ignoring Range: usable from byte 0 (cut at the end asked), refused for a later range', async () => {
    const url = await serve((_, res) => res.writeHead(200, { 'content-length': DATA.length }).end(DATA));
    expect((await fetchRange(req(url, 0, 999))).equals(DATA.subarray(0, 1000))).toBe(true);
    expect(await failure(fetchRange(req(url, 10, 999)))).toMatch(/ignores Range/);
  });

  it('a Content-Range for other bytes, or none, is refused', async () => {
    const url = await serve((range, res) => res.writeHead(206, { 'content-range': `bytes ${range![0] + 1}-${range![1] + 1}/5000` }).end(DATA.subarray(range![0] + 1, range![1] + 2)));
    expect(await failure(fetchRange(req(url, 0, 99)))).toMatch(/Content-Range/);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const url2 = await serve((range, res) => res.writeHead(206).end(DATA.subarray(range![0], range![1] + 1)));
    expect(await failure(fetchRange(req(url2, 0, 99)))).toMatch(/Content-Range null/);
  });

  it('more bytes than asked, or fewer, is refused', async () => {
    const long = await serve((range, res) => res.writeHead(206, { 'content-range': `bytes ${range![0]}-${range![1]}/5000` }).end(Buffer.alloc(range![1] - range![0] + 50)));
    expect(await failure(fetchRange(req(long, 0, 99)))).toMatch(/more than the 100 bytes/);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    const short = await serve((range, res) => {
      res.writeHead(206, { 'content-range': `bytes ${range![0]}-${range![1]}/5000` });
      res.end(Buffer.alloc(10));
    });
    expect(await failure(fetchRange(req(short, 0, 99)))).toMatch(/10 of 100 bytes/);
  });

  it('HTTP errors, redirect loops and redirects off HTTP are refused; a redirect is followed', async () => {
    const url = await serve((range, res, path) => {
      if (path === '/file') return void res.writeHead(302, { location: '/moved' }).end();
      if (path === '/moved') return honest(range, res, path);
      if (path === '/loop') return void res.writeHead(301, { location: '/loop' }).end();
      if (path === '/ftp') return void res.writeHead(302, { location: 'ftp://127.0.0.1/x' }).end();
      res.writeHead(404).end();
    });
    expect((await fetchRange(req(url, 5, 9))).equals(DATA.subarray(5, 10))).toBe(true);
    const base = url.slice(0, -'/file'.length);
    expect(await failure(fetchRange(req(`${base}/loop`, 0, 9)))).toMatch(/more than 5 redirects/);
    expect(await failure(fetchRange(req(`${base}/ftp`, 0, 9)))).toMatch(/ftp:/);
    expect(await failure(fetchRange(req(`${base}/none`, 0, 9)))).toMatch(/HTTP 404/);
  });

  it('a slow body that keeps coming is not cut off; one that stops is', async () => {
    const url = await serve((range, res) => {
      res.writeHead(206, { 'content-range': `bytes ${range![0]}-${range![1]}/5000` });
      const body = DATA.subarray(range![0], range![1] + 1);
      let at = 0;
      const tick = setInterval(() => {
        if (at >= 600) {
          clearInterval(tick); // then nothing more: a stall
          return;
        }
        res.write(body.subarray(at, at + 100));
        at += 100;
      }, 100);
      res.on('close', () => clearInterval(tick));
    });
    // 100 bytes every 100 ms for 0.6 s: longer than the 250 ms budget in all, never 250 ms without bytes
    expect((await fetchRange(req(url, 0, 599), { timeoutMs: 250 })).equals(DATA.subarray(0, 600))).toBe(true);
    expect(await failure(fetchRange(req(url, 0, 999), { timeoutMs: 250 }))).toMatch(/no progress for 250 ms/);
  });

  it('a server that never answers fails within the time budget; an abort stops it at once', async () => {
    const url = await serve(() => undefined);
    const t0 = Date.now();
    expect(await failure(fetchRange(req(url, 0, 9), { timeoutMs: 300 }))).toMatch(/no progress for 300 ms/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    const ac = new AbortController();
    const p = fetchRange(req(url, 0, 9), { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(await failure(p)).toMatch(/stopped/);
  });
});
