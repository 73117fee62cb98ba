import { isIP, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrackerError } from '../../src/core/errors.js';
import { peerKey } from '../../src/core/ids.js';
import type { PeerAddress } from '../../src/core/peer-address.js';
import { decode, isDict } from '../../src/metainfo/bencode.js';
import { COMPACT_IPV4_BYTES, COMPACT_IPV6_BYTES, MAX_PEERS_PER_REPLY, encodeCompactPeer, parseCompactPeers, type IpFamily } from '../../src/tracker/compact.js';
import { parseAnnounceResponse, parseScrapeResponse } from '../../src/tracker/response.js';
import { startTrackerServer, type TrackerServer } from '../../src/tracker/server.js';
import { MAX_INTERVAL_S, MIN_INTERVAL_S, type AnnounceParams, type AnnounceResult, type ScrapeResult } from '../../src/tracker/types.js';
import {
  ANNOUNCE_REPLY_HEADER_BYTES,
  MAX_SCRAPE_HASHES,
  SCRAPE_REPLY_ENTRY_BYTES,
  decodeUdpReply,
  decodeUdpRequest,
  encodeAnnounceReply,
  encodeAnnounceRequest,
  encodeConnectReply,
  encodeConnectRequest,
  encodeErrorReply,
  encodeScrapeReply,
  encodeScrapeRequest,
  type UdpReply,
  type UdpRequest,
} from '../../src/tracker/udp-codec.js';
import { buildAnnounceUrl, buildScrapeUrl, parseQueryBytes, percentEncodeBytes } from '../../src/tracker/url.js';
import { SCRAPE_HASH, httpReplyCorpus } from './corpus.js';
import { Rng, hashSeed, invariant, mutate, fuzzConfig, runFuzz } from './engine.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

function checkPeers(peers: readonly PeerAddress[], cap = MAX_PEERS_PER_REPLY): void {
  invariant(peers.length <= cap, 'peer list capped');
  const keys = new Set<string>();
  for (const p of peers) {
    invariant(isIP(p.host) !== 0 && Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535, `usable peer ${p.host}:${p.port}`);
    invariant(!keys.has(peerKey(p.host, p.port)), 'no duplicate peers');
    keys.add(peerKey(p.host, p.port));
    invariant(p.peerId === undefined || p.peerId.length === 20, 'peer id 20 bytes');
  }
}

function checkAnnounce(r: AnnounceResult): void {
  checkPeers(r.peers);
  invariant(Number.isInteger(r.interval) && r.interval >= MIN_INTERVAL_S && r.interval <= MAX_INTERVAL_S, 'interval clamped');
  invariant(r.minInterval === undefined || (r.minInterval >= 0 && r.minInterval <= r.interval), 'min interval clamped');
  invariant(r.warning === undefined || (r.warning !== '' && !CONTROL.test(r.warning)), 'warning sanitized');
  invariant(r.trackerId === undefined || (r.trackerId.length > 0 && r.trackerId.length <= 256), 'tracker id bounded');
  for (const n of [r.complete, r.incomplete]) invariant(n === undefined || (Number.isSafeInteger(n) && n >= 0), 'counts non-negative');
}

function checkScrape(s: ScrapeResult): void {
  for (const n of [s.complete, s.incomplete, s.downloaded]) invariant(Number.isSafeInteger(n) && n >= 0, 'scrape counts non-negative');
}

const PARAMS: AnnounceParams = {
  infoHash: Buffer.from('00ff2526263d2b20' + 'ab'.repeat(12), 'hex'),
  peerId: Buffer.from('-TT0001-abcdefghijkl'),
  port: 6881,
  uploaded: 0,
  downloaded: 2 ** 40,
  left: 12345,
  key: 0xdeadbeef,
  event: 'started',
  numwant: 50,
};

function udpCorpus(): { replies: Buffer[]; requests: Buffer[] } {
  const cid = Buffer.from('0102030405060708', 'hex');
  const v4 = Buffer.from([127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
  return {
    replies: [
      encodeConnectReply(7, cid),
      encodeAnnounceReply(8, { interval: 1800, leechers: 3, seeders: 4, compactPeers: v4 }),
      encodeAnnounceReply(9, { interval: 0, leechers: 0, seeders: 0, compactPeers: Buffer.alloc(0) }),
      encodeScrapeReply(10, [{ complete: 1, downloaded: 2, incomplete: 3 }, { complete: 0xffffffff, downloaded: 0, incomplete: 0 }]),
      encodeErrorReply(11, 'not registered \u2713'),
    ],
    requests: [
      encodeConnectRequest(1),
      encodeAnnounceRequest(cid, 2, PARAMS),
      encodeAnnounceRequest(cid, 3, { infoHash: PARAMS.infoHash, peerId: PARAMS.peerId, port: 1, uploaded: 2 ** 60, downloaded: 0, left: 2 ** 60, key: 0 }),
      encodeScrapeRequest(cid, 4, [SCRAPE_HASH]),
      encodeScrapeRequest(cid, 5, Array.from({ length: MAX_SCRAPE_HASHES }, (_, i) => Buffer.alloc(20, i))),
    ],
  };
}

function queryCorpus(): Buffer[] {
  const query = (url: string): Buffer => Buffer.from(url.slice(url.indexOf('?') + 1), 'latin1');
  return [
    query(buildAnnounceUrl('http://t/announce', PARAMS)),
    query(buildAnnounceUrl('http://t/announce?passkey=a%20b', { ...PARAMS, event: 'stopped', trackerId: 'x&y' })),
    query(buildScrapeUrl('http://t/scrape', SCRAPE_HASH)),
    query(`http://t/scrape?${Array.from({ length: 5 }, (_, i) => `info_hash=${percentEncodeBytes(Buffer.alloc(20, i))}`).join('&')}`),
    Buffer.from('a=1&&b&=c&d=%41+%2b'),
  ];
}

describe('fuzz: tracker replies (HTTP)', () => {
  it('parseAnnounceResponse returns clamped, filtered results or throws TrackerError', () => {
    const stats = runFuzz<AnnounceResult>({
      name: 'parseAnnounceResponse',
      corpus: httpReplyCorpus(),
      iterations: 20_000,
      errors: [TrackerError],
      run: (input) => parseAnnounceResponse(input),
      check: (_input, r) => checkAnnounce(r),
    });
    expect(stats.accepted).toBeGreaterThan(500);
    expect(stats.rejected.get('TrackerError')).toBeGreaterThan(1000);
  });

  it('parseScrapeResponse returns non-negative counts or throws TrackerError', () => {
    const stats = runFuzz<ScrapeResult>({
      name: 'parseScrapeResponse',
      corpus: httpReplyCorpus(),
      iterations: 10_000,
      errors: [TrackerError],
      run: (input) => parseScrapeResponse(input, SCRAPE_HASH),
      check: (_input, s) => checkScrape(s),
    });
    expect(stats.accepted).toBeGreaterThan(100);
  });
});

describe('fuzz: UDP tracker packets (BEP 15)', () => {
  const { replies, requests } = udpCorpus();

  it('decodeUdpReply never throws; what it decodes re-encodes to the packet', () => {
    runFuzz<UdpReply | undefined>({
      name: 'decodeUdpReply',
      corpus: replies,
      iterations: 20_000,
      errors: [],
      maxInputBytes: 2048,
      run: (input, seed) => decodeUdpReply(input, new Rng(seed).chance(0.5) ? 4 : 6),
      check: (input, r, seed) => {
        if (r === undefined) return;
        const family: IpFamily = new Rng(seed).chance(0.5) ? 4 : 6;
        const size = family === 4 ? COMPACT_IPV4_BYTES : COMPACT_IPV6_BYTES;
        if (r.action === 'connect') invariant(encodeConnectReply(r.transactionId, r.connectionId).equals(input.subarray(0, 16)), 'connect re-encodes');
        if (r.action === 'announce') {
          const peers = input.subarray(ANNOUNCE_REPLY_HEADER_BYTES);
          const again = encodeAnnounceReply(r.transactionId, { interval: r.interval, leechers: r.leechers, seeders: r.seeders, compactPeers: peers });
          invariant(again.equals(input), 'announce header re-encodes');
          invariant(r.peers.length === Math.floor(peers.length / size), 'one peer per whole entry');
        }
        if (r.action === 'scrape') {
          invariant(r.files.length === Math.floor((input.length - 8) / SCRAPE_REPLY_ENTRY_BYTES), 'one scrape entry per 12 bytes');
          const again = encodeScrapeReply(r.transactionId, r.files);
          invariant(again.equals(input.subarray(0, again.length)), 'scrape re-encodes');
        }
      },
    });
  });

  it('decodeUdpRequest (the embedded server) never throws; what it decodes is in range', () => {
    runFuzz<UdpRequest | undefined>({
      name: 'decodeUdpRequest',
      corpus: requests,
      iterations: 20_000,
      errors: [],
      maxInputBytes: 2048,
      run: (input) => decodeUdpRequest(input),
      check: (input, r) => {
        if (r === undefined) return;
        invariant(input.length >= 16, 'no request from fewer than 16 bytes');
        if (r.action === 'announce') {
          invariant(r.infoHash.length === 20 && r.peerId.length === 20 && r.connectionId.length === 8, 'fixed-size fields');
          invariant(r.port >= 0 && r.port <= 65535 && r.numwant >= -(2 ** 31) && r.numwant < 2 ** 31, 'port and numwant in range');
          for (const n of [r.downloaded, r.left, r.uploaded]) invariant(Number.isSafeInteger(n) && n >= 0, 'u64 counts clamped to safe integers');
          invariant([undefined, 'started', 'completed', 'stopped'].includes(r.event), 'known event');
        }
        if (r.action === 'scrape') {
          invariant(r.infoHashes.length >= 1 && r.infoHashes.length <= MAX_SCRAPE_HASHES, '1..74 hashes');
          invariant(r.infoHashes.every((h) => h.length === 20), '20-byte hashes');
        }
      },
    });
  });

  it('parseCompactPeers never throws and every entry round-trips through encodeCompactPeer', () => {
    runFuzz<PeerAddress[]>({
      name: 'parseCompactPeers',
      corpus: [Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]), Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff, 1, 2, 3, 4, 0, 1])])],
      iterations: 10_000,
      errors: [],
      maxInputBytes: 4096,
      run: (input, seed) => parseCompactPeers(input, new Rng(seed).chance(0.5) ? 4 : 6),
      check: (input, peers, seed) => {
        const family: IpFamily = new Rng(seed).chance(0.5) ? 4 : 6;
        const size = family === 4 ? COMPACT_IPV4_BYTES : COMPACT_IPV6_BYTES;
        invariant(peers.length === Math.floor(input.length / size), 'one peer per whole entry');
        peers.forEach((p, i) => {
          invariant(isIP(p.host) === family, `host ${p.host} is IPv${family}`);
          const again = encodeCompactPeer(p.host, p.port, family);
          invariant(again !== undefined && again.equals(input.subarray(i * size, (i + 1) * size)), `entry ${i} (${p.host}) round-trips`);
        });
      },
    });
  });
});

describe('fuzz: tracker query strings', () => {
  it('parseQueryBytes never throws, stays within maxParams, and round-trips through percent-encoding', () => {
    runFuzz<Map<string, Buffer[]> | undefined>({
      name: 'parseQueryBytes',
      corpus: queryCorpus(),
      iterations: 20_000,
      errors: [],
      maxInputBytes: 8192,
      run: (input) => parseQueryBytes(input.toString('latin1'), 16),
      check: (_input, q) => {
        if (q === undefined) return;
        const pairs = [...q].flatMap(([k, vs]) => vs.map((v) => `${percentEncodeBytes(Buffer.from(k, 'latin1'))}=${percentEncodeBytes(v)}`));
        invariant(pairs.length <= 16, 'at most maxParams parameters');
        const again = parseQueryBytes(pairs.join('&'), 16);
        invariant(again !== undefined && JSON.stringify([...again]) === JSON.stringify([...q]), 're-encoded query parses the same');
      },
    });
  });
});

/**
 * One raw HTTP/1.1 request to the embedded tracker; resolves with the status and body,
 * status 0 when the server closed without a reply (what it does on an HTTP parse error).
 */
function rawGet(port: number, target: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('tracker did not answer within 2 s'));
    }, 2000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset after the reply is fine; no reply is caught below
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw.subarray(0, 16).toString('latin1'));
      if (raw.length === 0) return resolve({ status: 0, body: raw });
      if (!m) return reject(new Error(`no HTTP status line (${JSON.stringify(raw.subarray(0, 64).toString('latin1'))}) for target hex ${target.toString('hex')}`));
      const split = raw.indexOf('\r\n\r\n');
      resolve({ status: Number(m[1]), body: split === -1 ? Buffer.alloc(0) : raw.subarray(split + 4) });
    });
    socket.write(Buffer.concat([Buffer.from('GET '), target, Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]));
  });
}

/** Keep the request line parseable most of the time so the query parser, not node's HTTP parser, is what gets fuzzed. */
function escapeForRequestLine(q: Buffer): Buffer {
  let out = '';
  for (const b of q) out += b > 0x20 && b < 0x7f ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`;
  return Buffer.from(out, 'latin1');
}

describe('fuzz: embedded tracker HTTP front end', () => {
  let server: TrackerServer;
  beforeAll(async () => {
    server = await startTrackerServer({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers every mutated announce/scrape query with a bencoded reply or a 4xx, never a 500, and stays up', async () => {
    const config = fuzzConfig();
    const rng = new Rng(hashSeed(`${config.seed}/tracker-http`));
    const corpus = queryCorpus();
    const requests = config.iterations ?? 300;
    const statuses = new Map<number, number>();
    for (let i = 0; i < requests; i++) {
      const query = mutate(rng, rng.pick(corpus), corpus, 4096);
      const path = rng.pick(['/announce', '/scrape', '/announce', '/scrape', '/x']);
      const raw = rng.chance(0.1);
      const target = Buffer.concat([Buffer.from(`${path}?`), raw ? query : escapeForRequestLine(query)]);
      const { status, body } = await rawGet(server.port, target);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const where = `request ${i} (TT_FUZZ_SEED=${JSON.stringify(config.seed)}), target hex ${target.toString('hex')}`;
      expect(status, where).not.toBe(500);
      if (status === 0) {
        expect(raw, `${where}: closed without a reply to a well-formed request line`).toBe(true);
      } else if (status === 200) {
        const reply = decode(body);
        expect(isDict(reply), where).toBe(true);
        if (path === '/announce' && isDict(reply) && !reply.has('failure reason')) checkAnnounce(parseAnnounceResponse(body));
      } else {
        expect([400, 404, 414], where).toContain(status);
      }
    }
    expect(statuses.get(200)).toBeGreaterThan(requests / 2);
    // still serving a well-formed announce afterwards
    const ok = await rawGet(server.port, Buffer.from(`/announce?${queryCorpus()[0]!.toString('latin1')}`));
    expect(ok.status).toBe(200);
    expect(parseAnnounceResponse(ok.body).interval).toBeGreaterThanOrEqual(MIN_INTERVAL_S);
  });
});
