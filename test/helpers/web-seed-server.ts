/**
 * A small HTTP file server on 127.0.0.1 for BEP 19 web seed tests: serves a
 * folder with single `Range: bytes=a-b` requests (206 + Content-Range), and
 * misbehaves on request: ignores Range, answers the wrong range, sends too
 * much, flips bytes, fails with 500, or never answers. Records every request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';

export type WebSeedBehaviour = 'ok' | 'ignore-range' | 'wrong-range' | 'too-long' | 'corrupt' | 'error500' | 'hang';

export interface WebSeedServer {
  readonly port: number;
  /** http://127.0.0.1:port/<prefix> */
  url(prefix?: string): string;
  readonly requests: { path: string; range: string | undefined }[];
  /** Behaviour for every request, or for paths containing a given substring. */
  behave(b: WebSeedBehaviour, pathContains?: string): void;
  /** Serve this folder from now on (the torrent naming the server is made after it listens). */
  serve(root: string): void;
  close(): Promise<void>;
}

export async function startWebSeedServer(initialRoot = '/nonexistent'): Promise<WebSeedServer> {
  let root = initialRoot;
  const requests: { path: string; range: string | undefined }[] = [];
  let behaviour: WebSeedBehaviour = 'ok';
  const perPath = new Map<string, WebSeedBehaviour>();
  const hanging = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    requests.push({ path, range: req.headers.range });
    let mode = behaviour;
    for (const [part, b] of perPath) if (path.includes(part)) mode = b;
    if (mode === 'hang') {
      hanging.add(res);
      return;
    }
    if (mode === 'error500') {
      res.writeHead(500).end('no');
      return;
    }
    if (path.startsWith('/redirect/')) {
      res.writeHead(302, { location: path.slice('/redirect'.length) }).end();
      return;
    }
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || mode === 'ignore-range') {
      res.writeHead(200, { 'content-length': data.length }).end(data);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), data.length - 1);
    let body = Buffer.from(data.subarray(start, end + 1));
    let range = `bytes ${start}-${end}/${data.length}`;
    if (mode === 'wrong-range') range = `bytes ${start + 1}-${end + 1}/${data.length}`;
    if (mode === 'too-long') body = Buffer.concat([body, Buffer.alloc(100, 7)]);
    if (mode === 'corrupt') for (let i = 0; i < body.length; i += 1000) body[i] = body[i]! ^ 0xff;
    res.writeHead(206, { 'content-range': range, 'content-length': body.length }).end(body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: (prefix = '') => `http://127.0.0.1:${port}/${prefix}`,
    requests,
    serve(folder) {
      root = folder;
    },
    behave(b, pathContains) {
      if (pathContains === undefined) behaviour = b;
      else perPath.set(pathContains, b);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
