import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerAddress } from '../../../src/core/peer-address.js';
import { Announcer, type TrackerFailure } from '../../../src/tracker/announcer.js';
import { announceUdp, clearUdpConnectionCache } from '../../../src/tracker/udp.js';
import { startTrackerServer, type TrackerServer } from '../../../src/tracker/server.js';
import { scrape } from '../../../src/tracker/client.js';
import { startOpentracker } from '../../helpers/opentracker.js';

const infoHash = Buffer.alloc(20, 0x5a);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  clearUdpConnectionCache();
});

async function liveTracker(): Promise<TrackerServer> {
  const server = await startTrackerServer();
  cleanups.push(() => server.close());
  // someone is already in the swarm
  await announceUdp(server.udpUrl, { infoHash, peerId: Buffer.alloc(20, 1), port: 9000, uploaded: 0, downloaded: 0, left: 0, key: 1, event: 'started' });
  return server;
}

/** An HTTP tracker that accepts connections and never answers. */
async function hangingHttp(): Promise<string> {
  const server: Server = createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/announce`;
}

/** A UDP tracker that drops every packet. */
async function blackholeUdp(): Promise<string> {
  const sock: Socket = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    sock.close();
  });
  return `udp://127.0.0.1:${sock.address().port}`;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function announcer(list: string[][], port = 7000): Announcer {
  const a = new Announcer({
    announceList: list,
    infoHash,
    peerId: Buffer.from(`-TT0001-${String(port).padStart(12, '0')}`, 'latin1'),
    port,
    stats: () => ({ uploaded: 0, downloaded: 0, left: 1000 }),
  });
  a.on('tracker-error', () => {});
  cleanups.push(() => a.stop(500));
  return a;
}

function firstPeers(a: Announcer, limitMs: number): Promise<{ peers: PeerAddress[]; url: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no peers within ${limitMs} ms`)), limitMs);
    a.once('peers', (peers: PeerAddress[], url: string) => {
      clearTimeout(timer);
      resolve({ peers, url, ms: Date.now() - started });
    });
  });
}

describe('Announcer over real transports', () => {
  it('fails over from a silent UDP tier 1 to a live HTTP tier 2 within a few seconds', async () => {
    const live = await liveTracker();
    const a = announcer([[await blackholeUdp()], [live.httpUrl]]);
    const got = firstPeers(a, 6_000);
    a.start();
    const r = await got;
    expect(r.url).toBe(live.httpUrl);
    expect(r.peers).toEqual([{ host: '127.0.0.1', port: 9000 }]);
    expect(r.ms).toBeGreaterThanOrEqual(2_900);
    expect(r.ms).toBeLessThan(4_500);
    expect(a.status().map((s) => [s.tier, s.state])).toEqual([
      [0, 'announcing'],
      [1, 'working'],
    ]);
  });

  it('fails over from a hanging HTTP tier 1 to a live UDP tier 2', async () => {
    const live = await liveTracker();
    const a = announcer([[await hangingHttp()], [live.udpUrl]]);
    const got = firstPeers(a, 6_000);
    a.start();
    const r = await got;
    expect(r.url).toBe(live.udpUrl);
    expect(r.ms).toBeLessThan(4_500);
  });

  it('moves on at once when tier 1 refuses connections', async () => {
    const live = await liveTracker();
    const a = announcer([[`http://127.0.0.1:${await closedPort()}/announce`, `udp://127.0.0.1:${await closedPort()}`], [live.httpUrl]]);
    const got = firstPeers(a, 3_000);
    a.start();
    const r = await got;
    expect(r.ms).toBeLessThan(1_500);
    expect(a.status().filter((s) => s.state === 'failing')).toHaveLength(2);
  });

  it("emits 'all-failed' when no tracker is reachable", async () => {
    const a = announcer([[`http://127.0.0.1:${await closedPort()}/announce`], [`udp://127.0.0.1:${await closedPort()}`]]);
    const failed = new Promise<TrackerFailure[]>((resolve) => a.once('all-failed', resolve));
    a.start();
    const failures = await failed;
    expect(failures).toHaveLength(2);
    expect(failures.every((f) => /ECONNREFUSED/.test(f.error.message))).toBe(true);
  });

  it('two announcers on the embedded tracker find each other', async () => {
    const server = await startTrackerServer();
    cleanups.push(() => server.close());
    const a = announcer([[server.httpUrl]], 7001);
    a.start();
    await new Promise((r) => setTimeout(r, 200));
    const b = announcer([[server.udpUrl]], 7002);
    const got = firstPeers(b, 3_000);
    b.start();
    const r = await got;
    expect(r.peers.map((p) => p.port)).toContain(7001);
    expect(r.peers.map((p) => p.port)).not.toContain(7002);
  });

  it('stop() sends stopped to the live tracker and returns within its bound while another hangs', async () => {
    const live = await liveTracker();
    const a = announcer([[await hangingHttp()], [live.httpUrl]], 7100);
    const got = firstPeers(a, 6_000);
    a.start();
    await got;
    expect(live.swarmSize(infoHash)).toEqual({ seeders: 1, leechers: 1 });
    const started = Date.now();
    await a.stop(1_000);
    expect(Date.now() - started).toBeLessThan(1_300);
    expect(live.swarmSize(infoHash)).toEqual({ seeders: 1, leechers: 0 });
  });
});

describe('a download that stops as it completes is counted (BEP 3 completed)', () => {
  /** Announce until the tracker knows us, complete, stop at once (tt download does): the scrape's `downloaded`. */
  async function completeAndStop(url: string, port: number): Promise<number> {
    let left = 1000;
    const a = new Announcer({
      announceList: [[url]],
      infoHash,
      peerId: Buffer.from(`-TT0001-${String(port).padStart(12, '0')}`, 'latin1'),
      port,
      stats: () => ({ uploaded: 0, downloaded: 1000 - left, left }),
    });
    a.on('tracker-error', () => {});
    cleanups.push(() => a.stop(500));
    const got = firstPeers(a, 3_000);
    a.start();
    await got;
    left = 0;
    a.completed();
    await a.stop(3_000);
    return (await scrape(url, infoHash, { timeoutMs: 3_000 })).downloaded;
  }

  it("tt's tracker, HTTP and UDP: scrape's downloaded becomes 1, and the peer is gone", async () => {
    const live = await liveTracker();
    expect(await completeAndStop(live.httpUrl, 7201)).toBe(1);
    expect(await completeAndStop(live.udpUrl, 7202)).toBe(2);
    expect(live.swarmSize(infoHash)).toEqual({ seeders: 1, leechers: 0 });
  });

  it('opentracker, HTTP and UDP: scrape\'s downloaded becomes 1', async () => {
    const ot = await startOpentracker([infoHash]);
    cleanups.push(() => ot.stop());
    // (opentracker's reply names the announcing peer too, so the first answer carries peers)
    expect(await completeAndStop(ot.httpUrl, 7203)).toBe(1);
    expect(await completeAndStop(ot.udpUrl, 7204)).toBe(2);
  });
});
