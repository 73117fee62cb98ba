/**
 * webseed/fetch.ts over a web seed's keep-alive agents (WEB_SEED_PARALLEL
 * sockets) against a local server that is slow to answer but never stalls:
 * requests queued behind the agent vs one at a time (a piece crossing many
 * small files); and Location headers that are not URLs.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createTorrent } from '../../../src/metainfo/create.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { WEB_SEED_PARALLEL, WebSeed } from '../../../src/session/web-seed.js';
import { WebSeedError, fetchRange } from '../../../src/webseed/fetch.js';

let server: Server | undefined;
const seeds: WebSeed[] = [];
afterEach(async () => {
  for (const ws of seeds.splice(0)) ws.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Serves `files` by path, each answer after `delayMs`; returns the base URL and the most requests it had open at once. */
async function slowServer(files: Map<string, Buffer>, delayMs: number): Promise<{ base: string; maxOpen: () => number }> {
  let open = 0;
  let maxOpen = 0;
  server = createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    res.on('close', () => open--);
    const data = files.get(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)) ?? Buffer.alloc(0);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!;
    const body = data.subarray(Number(m[1]), Number(m[2]) + 1);
    setTimeout(() => res.writeHead(206, { 'content-range': `bytes ${m[1]}-${m[2]}/${data.length}`, 'content-length': body.length }).end(body), delayMs);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  return { base: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/`, maxOpen: () => maxOpen };
}

describe('fetchRange behind a busy agent', () => {
  // A request's "no progress" clock starts when it has a socket, not while it queues behind the
  // agent's WEB_SEED_PARALLEL sockets: before, a piece of 400 files of 80 B from a server taking 200 ms
  // per answer never completed (the session also sends one file's request at a time now).
  it('requests queued behind the agent do not run out of time while the server keeps answering', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ path: [`f${i}.bin`], data: Buffer.alloc(100, i) }));
    const meta = parseTorrent(createTorrent('many', files, { pieceLength: 16_384 }));
    const { base, maxOpen } = await slowServer(new Map(files.map((f) => [`/many/${f.path[0]}`, f.data])), 100);
    const ws = new WebSeed(new URL(base));
    seeds.push(ws);
    const ranges = ws.ranges(meta, 0, meta.totalLength);
    expect(ranges).toHaveLength(12);
    // 12 requests, 2 sockets, 100 ms each: the last is sent ~500 ms after the call, past the 400 ms budget
    const parts = await Promise.all(ranges.map((r) => fetchRange(r, { agents: ws.agents, timeoutMs: 400 })));
    expect(maxOpen()).toBeLessThanOrEqual(WEB_SEED_PARALLEL);
    expect(Buffer.concat(parts).equals(Buffer.concat(files.map((f) => f.data)))).toBe(true);
  });

  it('one request at a time per socket: every file of the piece arrives, however many', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ path: [`f${i}.bin`], data: Buffer.alloc(100, i) }));
    const meta = parseTorrent(createTorrent('many', files, { pieceLength: 16_384 }));
    const { base, maxOpen } = await slowServer(new Map(files.map((f) => [`/many/${f.path[0]}`, f.data])), 100);
    const ws = new WebSeed(new URL(base));
    seeds.push(ws);
    const parts: Buffer[] = [];
    for (const r of ws.ranges(meta, 0, meta.totalLength)) parts.push(await fetchRange(r, { agents: ws.agents, timeoutMs: 300 }));
    expect(maxOpen()).toBe(1);
    expect(Buffer.concat(parts).equals(Buffer.concat(files.map((f) => f.data)))).toBe(true);
  });
});

describe('redirects that are not URLs', () => {
  it.each(['http://[', 'http://exa mple/', '//'])('Location %j is a WebSeedError, not a crash', async (location) => {
    server = createServer((_req, res) => res.writeHead(302, { location }).end());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/file`;
    const err = await fetchRange({ url, fileIndex: 0, start: 0, end: 9, torrentOffset: 0 }, { timeoutMs: 2_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WebSeedError);
  });
});
