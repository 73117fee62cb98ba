import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TrackerError } from '../../../src/core/errors.js';
import { encode } from '../../../src/metainfo/bencode.js';
import { announceHttp, scrapeHttp } from '../../../src/tracker/http.js';
import { parseQueryBytes } from '../../../src/tracker/url.js';
import { TrackerRefusedError, type AnnounceParams } from '../../../src/tracker/types.js';

const params: AnnounceParams = {
  infoHash: Buffer.from(Array.from({ length: 20 }, (_, i) => 255 - i * 7)),
  peerId: Buffer.from('-TT0001-000000000000', 'latin1'),
  port: 6881,
  uploaded: 0,
  downloaded: 0,
  left: 10,
  key: 7,
  event: 'started',
};

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function fakeTracker(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/announce`;
}

const compactPeer = Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]);

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('announceHttp against fake trackers', () => {
  it('sends the binary info hash byte-exactly and parses a compact reply', async () => {
    let seen: Map<string, Buffer[]> | undefined;
    const url = await fakeTracker((req, res) => {
      seen = parseQueryBytes(req.url!.slice(req.url!.indexOf('?') + 1));
      res.end(encode({ interval: 900, peers: compactPeer }));
    });
    const r = await announceHttp(`${url}?passkey=abc`, params);
    expect(r.peers).toEqual([{ host: '127.0.0.1', port: 6881 }]);
    expect(r.interval).toBe(900);
    expect(seen!.get('info_hash')).toEqual([params.infoHash]);
    expect(seen!.get('passkey')).toEqual([Buffer.from('abc')]);
    expect(seen!.get('event')).toEqual([Buffer.from('started')]);
  });

  it('connection refused -> TrackerError, fast', async () => {
    const url = await fakeTracker(() => {});
    const dead = servers.pop()!;
    await new Promise((r) => dead.close(r));
    const started = Date.now();
    const err = await rejectionOf(announceHttp(url, params, { timeoutMs: 5_000 }));
    expect(err).toBeInstanceOf(TrackerError);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a tracker that never answers times out within the budget', async () => {
    const url = await fakeTracker(() => {});
    const started = Date.now();
    const err = await rejectionOf(announceHttp(url, params, { timeoutMs: 300 }));
    expect(err).toBeInstanceOf(TrackerError);
    expect(err.message).toMatch(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('a tracker that stalls mid-body times out too', async () => {
    const url = await fakeTracker((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('d8:interval');
    });
    const err = await rejectionOf(announceHttp(url, params, { timeoutMs: 300 }));
    expect(err.message).toMatch(/did not answer within 300 ms/);
  });

  it('the caller can abort', async () => {
    const url = await fakeTracker(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const err = await rejectionOf(announceHttp(url, params, { signal: ac.signal, timeoutMs: 5_000 }));
    expect(err.message).toMatch(/aborted/);
  });

  it('HTTP 500 -> TrackerError naming the status', async () => {
    const url = await fakeTracker((_req, res) => {
      res.writeHead(500).end(encode({ interval: 60, peers: compactPeer }));
    });
    const err = await rejectionOf(announceHttp(url, params));
    expect(err).toBeInstanceOf(TrackerError);
    expect(err.message).toBe('tracker answered HTTP 500');
  });

  it('follows a relative redirect but gives up on a redirect loop after 5 hops', async () => {
    let hits = 0;
    const url = await fakeTracker((req, res) => {
      hits++;
      if (req.url!.startsWith('/announce')) res.writeHead(302, { location: `/moved${req.url!.slice('/announce'.length)}` }).end();
      else if (req.url!.startsWith('/moved')) res.end(encode({ interval: 60, peers: compactPeer }));
      else res.writeHead(301, { location: req.url! }).end(); // /loop -> /loop
    });
    expect((await announceHttp(url, params)).peers).toHaveLength(1);
    expect(hits).toBe(2);
    hits = 0;
    const err = await rejectionOf(announceHttp(url.replace('/announce', '/loop'), params));
    expect(err.message).toMatch(/more than 5 redirects/);
    expect(hits).toBe(6);
  });

  it('refuses a redirect to port 0 (node would dial port 80, which nobody named)', async () => {
    const url = await fakeTracker((_req, res) => res.writeHead(302, { location: 'http://127.0.0.1:0/announce' }).end());
    await expect(announceHttp(url, params)).rejects.toThrow(/^port 0 cannot be dialed$/);
  });

  it('refuses a redirect to another scheme', async () => {
    const url = await fakeTracker((_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    await expect(announceHttp(url, params)).rejects.toThrow(/unsupported tracker URL scheme/);
  });

  describe('never sends credentials (as web seeds): no Authorization header', () => {
    /** A tracker that redirects /announce to `location(port)` and answers /announce2; records what it saw. */
    async function redirectingTracker(location: (port: number) => string) {
      const seen: { path: string; authorization: string | undefined }[] = [];
      const url = await fakeTracker((req, res) => {
        seen.push({ path: req.url!.split('?')[0]!, authorization: req.headers.authorization });
        if (req.url!.startsWith('/announce2')) res.end(encode({ interval: 60, peers: compactPeer }));
        else res.writeHead(302, { location: location(req.socket.localPort!) }).end();
      });
      return { url, seen };
    }

    it("from a redirect's Location", async () => {
      const t = await redirectingTracker((port) => `http://user:secret@127.0.0.1:${port}/announce2`);
      expect((await announceHttp(t.url, params)).peers).toHaveLength(1);
      expect(t.seen).toEqual([
        { path: '/announce', authorization: undefined },
        { path: '/announce2', authorization: undefined },
      ]);
    });

    it('from the tracker URL itself', async () => {
      const t = await redirectingTracker(() => '/announce2');
      expect((await announceHttp(t.url.replace('http://', 'http://me:pass@'), params)).peers).toHaveLength(1);
      expect(t.seen).toEqual([
        { path: '/announce', authorization: undefined },
        { path: '/announce2', authorization: undefined },
      ]);
    });
  });

  it('failure reason -> TrackerRefusedError; warning -> result.warning with peers', async () => {
    let refuse = true;
    const url = await fakeTracker((_req, res) => {
      res.end(encode(refuse ? { 'failure reason': 'unregistered torrent' } : { 'warning message': 'slow down', interval: 60, peers: compactPeer }));
    });
    const err = await rejectionOf(announceHttp(url, params));
    expect(err).toBeInstanceOf(TrackerRefusedError);
    expect((err as TrackerRefusedError).reason).toBe('unregistered torrent');
    refuse = false;
    const r = await announceHttp(url, params);
    expect(r.warning).toBe('slow down');
    expect(r.peers).toHaveLength(1);
  });

  it('garbage body -> TrackerError', async () => {
    const url = await fakeTracker((_req, res) => res.end('<html><body>nginx</body></html>'));
    await expect(announceHttp(url, params)).rejects.toThrow(/invalid reply/);
  });

  it('an oversized reply is refused, declared or streamed without a length', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
    let declared = true;
    const url = await fakeTracker((_req, res) => {
      if (declared) res.writeHead(200, { 'content-length': String(big.length) });
      res.end(big);
    });
    await expect(announceHttp(url, params)).rejects.toThrow(/larger than 1048576 bytes/);
    declared = false;
    await expect(announceHttp(url, params)).rejects.toThrow(/larger than 1048576 bytes/);
  });
});

describe('announceHttp: connections', () => {
  it('a reply cut short of its Content-Length is an error, even when the bytes so far parse', async () => {
    const whole = encode({ interval: 1800, peers: compactPeer });
    const url = await fakeTracker((_req, res) => {
      res.writeHead(200, { 'content-length': String(whole.length + 10) });
      res.write(whole);
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const err = await rejectionOf(announceHttp(url, params));
    expect(err).toBeInstanceOf(TrackerError);
  });

  it('a tracker that closes the connection after every reply answers each announce', async () => {
    let answered = 0;
    const url = await fakeTracker((_req, res) => {
      answered++;
      res.writeHead(200, { connection: 'close' });
      res.end(encode({ interval: 1800, peers: compactPeer }));
    });
    for (let i = 0; i < 5; i++) {
      const r = await announceHttp(url, params);
      expect(r.peers).toEqual([{ host: '127.0.0.1', port: 6881 }]);
    }
    expect(answered).toBe(5);
  });
});

describe('scrapeHttp', () => {
  it('derives /scrape from /announce and reads the entry', async () => {
    let path = '';
    const url = await fakeTracker((req, res) => {
      path = req.url!.split('?')[0]!;
      const files = new Map([[params.infoHash.toString('latin1'), { complete: 4, incomplete: 1, downloaded: 9 }]]);
      res.end(encode({ files }));
    });
    expect(await scrapeHttp(url, params.infoHash)).toEqual({ complete: 4, incomplete: 1, downloaded: 9 });
    expect(path).toBe('/scrape');
    await expect(scrapeHttp(url.replace('/announce', '/tracker'), params.infoHash)).rejects.toThrow(/no scrape URL/);
  });
});
