import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TrackerError } from '../../../src/core/errors.js';
import { announceUdp, clearUdpConnectionCache, scrapeUdp } from '../../../src/tracker/udp.js';
import {
  decodeUdpRequest,
  encodeAnnounceReply,
  encodeConnectReply,
  encodeErrorReply,
  encodeScrapeReply,
  type UdpRequest,
} from '../../../src/tracker/udp-codec.js';
import { TrackerRefusedError, type AnnounceParams } from '../../../src/tracker/types.js';

const params: AnnounceParams = {
  infoHash: Buffer.alloc(20, 0xaa),
  peerId: Buffer.alloc(20, 0x62),
  port: 6881,
  uploaded: 1,
  downloaded: 2,
  left: 3,
  key: 99,
  event: 'started',
};
const CID = Buffer.from('c0ffee00c0ffee00', 'hex');
const PEERS = Buffer.from([10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x1a, 0xe2]);

type Reply = (b: Buffer) => void;
type Script = (req: UdpRequest, reply: Reply, seen: number) => void;

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  clearUdpConnectionCache();
  vi.useRealTimers();
});

/** A fake UDP tracker: `script` decides, per decoded request, what (if anything) to send back. */
async function fakeUdpTracker(script: Script): Promise<{ url: string; requests: UdpRequest[] }> {
  const sock = createSocket('udp4');
  sockets.push(sock);
  const requests: UdpRequest[] = [];
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const req = decodeUdpRequest(msg);
    if (!req) return;
    requests.push(req);
    const reply: Reply = (b) => {
      if (sockets.includes(sock)) sock.send(b, rinfo.port, rinfo.address); // a late reply after the test: dropped
    };
    script(req, reply, requests.length);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { url: `udp://127.0.0.1:${sock.address().port}/announce`, requests };
}

/** The well-behaved part of a tracker. */
function honest(req: UdpRequest, reply: Reply): void {
  if (req.action === 'connect') reply(encodeConnectReply(req.transactionId, CID));
  else if (req.action === 'announce') reply(encodeAnnounceReply(req.transactionId, { interval: 600, leechers: 1, seeders: 2, compactPeers: PEERS }));
  else reply(encodeScrapeReply(req.transactionId, [{ complete: 5, downloaded: 6, incomplete: 7 }]));
}

const fast = { timeoutMs: 1_000, retryBaseMs: 100 };

describe('announceUdp against fake trackers (BEP 15)', () => {
  it('connects, announces and parses peers and counts', async () => {
    const t = await fakeUdpTracker(honest);
    const r = await announceUdp(t.url, params, fast);
    expect(r).toEqual({
      peers: [
        { host: '10.0.0.1', port: 6881 },
        { host: '10.0.0.2', port: 6882 },
      ],
      interval: 600,
      complete: 2,
      incomplete: 1,
    });
    expect(t.requests.map((q) => q.action)).toEqual(['connect', 'announce']);
    const ann = t.requests[1]!;
    expect(ann.action === 'announce' && ann.connectionId).toEqual(CID);
    expect(ann.action === 'announce' && ann.event).toBe('started');
  });

  it('caches the connection id for 60 s, then reconnects', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t = await fakeUdpTracker(honest);
    await announceUdp(t.url, params, fast);
    await announceUdp(t.url, params, fast);
    expect(t.requests.map((q) => q.action)).toEqual(['connect', 'announce', 'announce']);
    vi.setSystemTime(Date.now() + 61_000);
    await announceUdp(t.url, params, fast);
    expect(t.requests.map((q) => q.action)).toEqual(['connect', 'announce', 'announce', 'connect', 'announce']);
  });

  it('gives up on a tracker that drops everything within its budget, after retransmitting', async () => {
    const t = await fakeUdpTracker(() => {});
    const started = Date.now();
    const err = await announceUdp(t.url, params, fast).then(
      () => new Error('expected a rejection'),
      (e: unknown) => e as Error,
    );
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(TrackerError);
    expect(err.message).toMatch(/did not answer within 1000 ms/);
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(1_500);
    // waits of 100, 200, 400 ms, then the rest of the budget: 4 connect attempts
    expect(t.requests.length).toBeGreaterThanOrEqual(3);
    expect(t.requests.length).toBeLessThanOrEqual(5);
    expect(t.requests.every((q) => q.action === 'connect')).toBe(true);
    expect(new Set(t.requests.map((q) => q.transactionId)).size).toBe(t.requests.length);
  });

  it('retransmits after a dropped packet and a delayed reply', async () => {
    const t = await fakeUdpTracker((req, reply, n) => {
      if (n === 1) return; // the first connect is lost
      if (req.action === 'announce' && n === 3) {
        setTimeout(() => honest(req, reply), 50); // slow but inside the wait
        return;
      }
      honest(req, reply);
    });
    const r = await announceUdp(t.url, params, fast);
    expect(r.peers).toHaveLength(2);
    expect(t.requests.map((q) => q.action)).toEqual(['connect', 'connect', 'announce']);
  });

  it('ignores replies with a wrong transaction id and garbled or truncated packets', async () => {
    const t = await fakeUdpTracker((req, reply) => {
      if (req.action === 'connect') {
        reply(encodeConnectReply(req.transactionId + 1, Buffer.alloc(8, 1))); // wrong tid
        reply(Buffer.from([0, 0, 0])); // garbage
        reply(encodeConnectReply(req.transactionId, CID).subarray(0, 12)); // truncated
        const unknown = encodeConnectReply(req.transactionId, CID);
        unknown.writeUInt32BE(9, 0); // unknown action
        reply(unknown);
        setTimeout(() => honest(req, reply), 20);
      } else if (req.action === 'announce') {
        reply(encodeAnnounceReply(req.transactionId, { interval: 1, leechers: 0, seeders: 0, compactPeers: Buffer.alloc(0) }).subarray(0, 19));
        setTimeout(() => honest(req, reply), 20);
      }
    });
    const r = await announceUdp(t.url, params, fast);
    expect(r.peers).toHaveLength(2);
    const ann = t.requests.find((q) => q.action === 'announce');
    expect(ann?.action === 'announce' && ann.connectionId).toEqual(CID);
  });

  /** A reply with the right transaction id but `action` in place of what was asked for. */
  function withAction(reply: Buffer, action: number): Buffer {
    const b = Buffer.from(reply);
    b.writeUInt32BE(action, 0);
    return b;
  }

  describe('a reply with the wrong action is ignored, never answered with an immediate resend', () => {
    const wrong: [string, Script][] = [
      [
        'announce answered as a scrape',
        (req, reply) => {
          if (req.action === 'connect') honest(req, reply);
          else reply(encodeScrapeReply(req.transactionId, [{ complete: 0, downloaded: 0, incomplete: 0 }]));
        },
      ],
      [
        'announce answered as a connect',
        (req, reply) => {
          if (req.action === 'connect') honest(req, reply);
          else reply(encodeConnectReply(req.transactionId, CID));
        },
      ],
      [
        'connect answered as an announce',
        (req, reply) => reply(encodeAnnounceReply(req.transactionId, { interval: 60, leechers: 0, seeders: 0, compactPeers: PEERS })),
      ],
      [
        'connect answered as a scrape',
        (req, reply) => reply(encodeScrapeReply(req.transactionId, [])),
      ],
      [
        'replies too short for their action',
        (req, reply) => {
          if (req.action === 'connect') reply(encodeConnectReply(req.transactionId, CID).subarray(0, 12));
          else reply(encodeAnnounceReply(req.transactionId, { interval: 60, leechers: 0, seeders: 0, compactPeers: Buffer.alloc(0) }).subarray(0, 19));
        },
      ],
    ];
    it.each(wrong)('%s: a handful of packets over the whole budget', async (_name, script) => {
      const t = await fakeUdpTracker(script);
      const started = Date.now();
      await expect(announceUdp(t.url, params, fast)).rejects.toThrow(/did not answer within 1000 ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      // waits of 100, 200, 400 ms then the rest (4-5 attempts): at most a connect and an announce in each
      expect(t.requests.length).toBeLessThanOrEqual(10);
    });

    it('scrape answered as an announce: a handful of packets over the whole budget', async () => {
      const t = await fakeUdpTracker((req, reply) => {
        if (req.action === 'connect') honest(req, reply);
        else reply(encodeAnnounceReply(req.transactionId, { interval: 60, leechers: 0, seeders: 0, compactPeers: PEERS }));
      });
      await expect(scrapeUdp(t.url, params.infoHash, fast)).rejects.toThrow(/did not answer within 1000 ms/);
      expect(t.requests.length).toBeLessThanOrEqual(10);
    });

    it('the proper reply that follows a wrong one in the same attempt is taken', async () => {
      const t = await fakeUdpTracker((req, reply) => {
        if (req.action === 'connect') reply(withAction(encodeConnectReply(req.transactionId, Buffer.alloc(8, 7)), 2));
        else reply(withAction(encodeAnnounceReply(req.transactionId, { interval: 1, leechers: 0, seeders: 0, compactPeers: Buffer.alloc(0) }), 0));
        setTimeout(() => honest(req, reply), 20);
      });
      const r = await announceUdp(t.url, params, fast);
      expect(r.peers).toHaveLength(2);
      expect(t.requests.map((q) => q.action)).toEqual(['connect', 'announce']);
      const ann = t.requests[1]!;
      expect(ann.action === 'announce' && ann.connectionId).toEqual(CID);
    });

    it('error replies end the request, resending at most once (a cached connection id may be stale)', async () => {
      const t = await fakeUdpTracker((req, reply) => {
        if (req.action === 'connect') honest(req, reply);
        else reply(encodeErrorReply(req.transactionId, 'no'));
      });
      await announceUdp(t.url, params, fast).catch(() => undefined); // caches the id
      const before = t.requests.length;
      await expect(announceUdp(t.url, params, fast)).rejects.toBeInstanceOf(TrackerRefusedError);
      expect(t.requests.slice(before).map((q) => q.action)).toEqual(['announce', 'connect', 'announce']);
    });
  });

  it('an error action becomes a TrackerRefusedError with its message, without waiting', async () => {
    const t = await fakeUdpTracker((req, reply) => {
      if (req.action === 'connect') honest(req, reply);
      else reply(encodeErrorReply(req.transactionId, 'torrent not registered'));
    });
    const started = Date.now();
    const err = await announceUdp(t.url, params, fast).then(
      () => new Error('expected a rejection'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(TrackerRefusedError);
    expect((err as TrackerRefusedError).reason).toBe('torrent not registered');
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('a trailing partial peer entry is ignored and interval 0 is clamped', async () => {
    const t = await fakeUdpTracker((req, reply) => {
      if (req.action === 'connect') honest(req, reply);
      else reply(encodeAnnounceReply(req.transactionId, { interval: 0, leechers: 0, seeders: 0, compactPeers: Buffer.concat([PEERS, Buffer.from([1, 2, 3])]) }));
    });
    const r = await announceUdp(t.url, params, fast);
    expect(r.peers).toHaveLength(2);
    expect(r.interval).toBe(60);
  });

  it('a closed port fails fast (ICMP unreachable on a connected socket)', async () => {
    const t = await fakeUdpTracker(() => {});
    sockets.pop()!.close();
    const started = Date.now();
    await expect(announceUdp(t.url, params, { timeoutMs: 5_000 })).rejects.toThrow(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('can be aborted by the caller', async () => {
    const t = await fakeUdpTracker(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const started = Date.now();
    await expect(announceUdp(t.url, params, { signal: ac.signal, timeoutMs: 5_000 })).rejects.toThrow(/aborted/);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('rejects URLs without a port', async () => {
    await expect(announceUdp('udp://127.0.0.1/announce', params)).rejects.toThrow(/no valid port/);
  });
});

describe('scrapeUdp', () => {
  it('maps seeders/completed/leechers', async () => {
    const t = await fakeUdpTracker(honest);
    expect(await scrapeUdp(t.url, params.infoHash, fast)).toEqual({ complete: 5, downloaded: 6, incomplete: 7 });
    const s = t.requests[1]!;
    expect(s.action === 'scrape' && s.infoHashes).toEqual([params.infoHash]);
  });
});
