import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { decode } from '../../../src/metainfo/bencode.js';
import { announceHttp, scrapeHttp } from '../../../src/tracker/http.js';
import { announceUdp, clearUdpConnectionCache, scrapeUdp } from '../../../src/tracker/udp.js';
import { MAX_RECORDS_PER_HOST, MAX_SWARMS_PER_HOST, startTrackerServer, type TrackerServer } from '../../../src/tracker/server.js';
import http from 'node:http';
import { TrackerRefusedError, type AnnounceEvent, type AnnounceParams } from '../../../src/tracker/types.js';
import { encodeAnnounceRequest, encodeConnectRequest } from '../../../src/tracker/udp-codec.js';

const infoHash = Buffer.from('00112233445566778899aabbccddeeff00112233', 'hex');

function peer(port: number, over: Partial<Omit<AnnounceParams, 'event'>> & { event?: AnnounceEvent | undefined } = {}): AnnounceParams {
  const { event = 'started', ...rest } = 'event' in over ? { ...over, event: over.event ?? null } : over;
  const p: AnnounceParams = {
    infoHash,
    peerId: Buffer.from(`-TT0001-peer${String(port).padStart(8, '0')}`, 'latin1'),
    port,
    uploaded: 0,
    downloaded: 0,
    left: 1000,
    key: port,
    ...rest,
  };
  if (event !== null) p.event = event;
  return p;
}

let server: TrackerServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  clearUdpConnectionCache();
});

describe('embedded tracker server', () => {
  it('binds TCP and UDP on the same loopback port', async () => {
    server = await startTrackerServer();
    expect(server.port).toBeGreaterThan(0);
    expect(server.httpUrl).toBe(`http://127.0.0.1:${server.port}/announce`);
    expect(server.udpUrl).toBe(`udp://127.0.0.1:${server.port}`);
  });

  it('over HTTP: two peers see each other but never themselves; stopped removes; scrape counts', async () => {
    server = await startTrackerServer({ interval: 300 });
    const first = await announceHttp(server.httpUrl, peer(7001));
    expect(first.peers).toEqual([]);
    expect(first.interval).toBe(300);
    const second = await announceHttp(server.httpUrl, peer(7002, { left: 0 }));
    expect(second.peers).toEqual([{ host: '127.0.0.1', port: 7001 }]);
    expect(second).toMatchObject({ complete: 1, incomplete: 1 });
    const again = await announceHttp(server.httpUrl, peer(7001, { event: undefined }));
    expect(again.peers).toEqual([{ host: '127.0.0.1', port: 7002 }]);
    expect(server.swarmSize(infoHash)).toEqual({ seeders: 1, leechers: 1 });
    expect(await scrapeHttp(server.httpUrl, infoHash)).toEqual({ complete: 1, incomplete: 1, downloaded: 0 });

    await announceHttp(server.httpUrl, peer(7001, { event: 'completed', left: 0 }));
    expect(await scrapeHttp(server.httpUrl, infoHash)).toEqual({ complete: 2, incomplete: 0, downloaded: 1 });
    await announceHttp(server.httpUrl, peer(7002, { event: 'stopped' }));
    expect(server.swarmSize(infoHash)).toEqual({ seeders: 1, leechers: 0 });
  });

  it('over UDP: two peers see each other; scrape works; HTTP and UDP share the swarm', async () => {
    server = await startTrackerServer();
    await announceUdp(server.udpUrl, peer(8001));
    const r = await announceUdp(server.udpUrl, peer(8002));
    expect(r.peers).toEqual([{ host: '127.0.0.1', port: 8001 }]);
    expect(r).toMatchObject({ complete: 0, incomplete: 2, interval: 120 });
    const viaHttp = await announceHttp(server.httpUrl, peer(8003));
    expect(viaHttp.peers.map((p) => p.port).sort()).toEqual([8001, 8002]);
    expect(await scrapeUdp(server.udpUrl, infoHash)).toEqual({ complete: 0, incomplete: 3, downloaded: 0 });
    // a second request reuses the cached connection id from a new socket
    const again = await announceUdp(server.udpUrl, peer(8001, { event: undefined }));
    expect(again.peers).toHaveLength(2);
  });

  it('keeps a peer past two short intervals (expiry has a floor: libtorrent re-announces every 300 s at most; unit tests cover when it goes)', async () => {
    server = await startTrackerServer({ interval: 1 });
    await announceHttp(server.httpUrl, peer(7101));
    expect(server.swarmSize(infoHash).leechers).toBe(1);
    await new Promise((r) => setTimeout(r, 2_100));
    expect(server.swarmSize(infoHash).leechers).toBe(1);
    const r = await announceHttp(server.httpUrl, peer(7102));
    expect(r.peers.map((p) => p.port)).toEqual([7101]);
  });

  it('honours the allow list over HTTP and UDP', async () => {
    server = await startTrackerServer({ allowList: [Buffer.alloc(20, 9)] });
    await expect(announceHttp(server.httpUrl, peer(7201))).rejects.toThrow(TrackerRefusedError);
    await expect(announceUdp(server.udpUrl, peer(7201))).rejects.toThrow(/not allowed/);
    const ok = await announceHttp(server.httpUrl, peer(7201, { infoHash: Buffer.alloc(20, 9) }));
    expect(ok.peers).toEqual([]);
  });

  it('answers malformed HTTP requests with a failure reason and keeps serving', async () => {
    server = await startTrackerServer();
    const base = `http://127.0.0.1:${server.port}`;
    const bad = [
      '/announce',
      '/announce?info_hash=short&peer_id=x&port=1&left=0',
      `/announce?info_hash=${'%00'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=0&left=0`,
      `/announce?info_hash=${'%00'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=99999&left=0`,
      `/announce?info_hash=${'%00'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=1&left=-1`,
      `/announce?info_hash=${'%00'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=1&left=0&event=bogus`,
      `/announce?info_hash=${'%00'.repeat(20)}&info_hash=${'%00'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=1&left=0`,
      '/announce?info_hash=%zz',
      '/scrape',
      '/scrape?info_hash=abc',
    ];
    for (const path of bad) {
      const res = await fetch(base + path);
      expect(res.status).toBe(200);
      const body = decode(Buffer.from(await res.arrayBuffer())) as Map<string, Buffer>;
      expect(body.get('failure reason')?.toString(), path).toBeTruthy();
    }
    const notFound = await fetch(`${base}/other`);
    expect(notFound.status).toBe(404);
    await notFound.arrayBuffer();
    const tooLong = await fetch(`${base}/announce?x=${'a'.repeat(5000)}`);
    expect(tooLong.status).toBe(414);
    await tooLong.arrayBuffer();
    expect((await announceHttp(server.httpUrl, peer(7301))).interval).toBe(120);
  });

  it('answers malformed UDP packets with an error or silence, and a bad connection id with an error', async () => {
    server = await startTrackerServer();
    const sock = createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const send = (b: Buffer): Promise<void> => new Promise((r) => sock.send(b, server!.port, '127.0.0.1', () => r()));
    try {
      await send(Buffer.from('hi'));
      const badProto = encodeConnectRequest(42);
      badProto[0] = 1;
      await send(badProto);
      await send(encodeAnnounceRequest(Buffer.alloc(8, 7), 43, peer(1)));
      await send(encodeConnectRequest(44));
      for (let i = 0; i < 50 && replies.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      const byTid = new Map(replies.map((m) => [m.readUInt32BE(4), m]));
      expect(byTid.get(42)!.readUInt32BE(0)).toBe(3);
      expect(byTid.get(43)!.readUInt32BE(0)).toBe(3);
      expect(byTid.get(43)!.subarray(8).toString()).toBe('invalid connection id');
      expect(byTid.get(44)!.readUInt32BE(0)).toBe(0);
      expect(replies).toHaveLength(3);
    } finally {
      sock.close();
    }
  });
});

describe('embedded tracker server on IPv6 loopback', () => {
  it('serves peers6 over HTTP and 18-byte entries over UDP', async () => {
    server = await startTrackerServer({ host: '::1' });
    expect(server.httpUrl).toBe(`http://[::1]:${server.port}/announce`);
    await announceHttp(server.httpUrl, peer(9101));
    const viaHttp = await announceHttp(server.httpUrl, peer(9102));
    expect(viaHttp.peers).toEqual([{ host: '::1', port: 9101 }]);
    const viaUdp = await announceUdp(server.udpUrl, peer(9103));
    expect(viaUdp.peers.map((p) => `${p.host}/${p.port}`).sort()).toEqual(['::1/9101', '::1/9102']);
  });
});

describe('embedded tracker server: one host cannot fill it', () => {
  /** An announce over HTTP from another loopback address (127.0.0.2): another host, as the tracker sees it. */
  function announceFrom(localAddress: string, url: string, hash: Buffer, port: number): Promise<ReadonlyMap<string, unknown>> {
    const q = `info_hash=${escape(hash.toString('latin1'))}&peer_id=${'-TT0001-abcdefghijkl'}&port=${port}&uploaded=0&downloaded=0&left=10&compact=1`;
    return new Promise((resolve, reject) => {
      http
        .get(`${url}?${q}`, { localAddress }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(decode(Buffer.concat(chunks)) as unknown as ReadonlyMap<string, unknown>));
        })
        .on('error', reject);
    });
  }

  it(`a host announcing from 100 ports keeps only its newest ${MAX_RECORDS_PER_HOST} records in a swarm; another host still joins and is told about them`, async () => {
    server = await startTrackerServer();
    for (let port = 20_000; port < 20_100; port++) await announceHttp(server.httpUrl, peer(port));
    expect(server.swarmSize(infoHash).leechers).toBe(MAX_RECORDS_PER_HOST);
    const r = await announceHttp(server.httpUrl, peer(20_100, { numwant: 200 }));
    expect(Math.min(...r.peers.map((p) => p.port))).toBe(20_100 - MAX_RECORDS_PER_HOST + 1); // the oldest went
    const other = await announceFrom('127.0.0.2', server.httpUrl, infoHash, 6881);
    expect([...other.keys()]).toContain('interval'); // an answer, not a failure reason
    expect(other.has('failure reason')).toBe(false);
    expect(server.swarmSize(infoHash).leechers).toBe(MAX_RECORDS_PER_HOST + 1);
  });

  it(`a host opening more than ${MAX_SWARMS_PER_HOST} swarms is refused; another host can still open one`, async () => {
    server = await startTrackerServer();
    const hash = (i: number): Buffer => Buffer.from(i.toString(16).padStart(40, '0'), 'hex');
    for (let i = 0; i < MAX_SWARMS_PER_HOST; i++) await announceHttp(server.httpUrl, peer(7000, { infoHash: hash(i) }));
    await expect(announceHttp(server.httpUrl, peer(7000, { infoHash: hash(MAX_SWARMS_PER_HOST) }))).rejects.toThrow(/too many torrents from 127\.0\.0\.1/);
    const other = await announceFrom('127.0.0.2', server.httpUrl, hash(MAX_SWARMS_PER_HOST), 6881);
    expect([...other.keys()]).toContain('interval');
    expect(other.has('failure reason')).toBe(false);
  });
});
