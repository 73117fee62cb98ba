/**
 * scrapeAll/formatScrape (`tt info --scrape`): the trackers of every tier asked concurrently
 * (the first 200, 32 at a time),
 * answers kept in tier order, failures and skips as per-tracker results, bounded time;
 * then the real transports against the embedded tracker on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TrackerError } from '../../../src/core/errors.js';
import { MAX_SCRAPED_TRACKERS, SCRAPE_CONCURRENCY, formatScrape, scrapeAll, trackerUrls, type ScrapeFn } from '../../../src/cli/scrape-trackers.js';
import { startTrackerServer } from '../../../src/tracker/server.js';
import type { TrackerRequestOptions } from '../../../src/tracker/types.js';
import { announceUdp, clearUdpConnectionCache } from '../../../src/tracker/udp.js';

const infoHash = Buffer.alloc(20, 0x33);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  clearUdpConnectionCache();
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('trackerUrls', () => {
  it('lists every tier in order, trimmed, without duplicates or blanks', () => {
    expect(trackerUrls([['udp://a:1', ' http://b/announce '], [''], ['udp://a:1', 'http://c/announce']])).toEqual([
      'udp://a:1',
      'http://b/announce',
      'http://c/announce',
    ]);
    expect(trackerUrls([])).toEqual([]);
  });
});

describe('scrapeAll', () => {
  it('asks every tracker concurrently and keeps tier order whatever order they answer in', async () => {
    const calls: { url: string; opts: TrackerRequestOptions; at: number }[] = [];
    const t0 = Date.now();
    const scrape: ScrapeFn = async (url, hash, opts) => {
      expect(hash.equals(infoHash)).toBe(true);
      calls.push({ url, opts, at: Date.now() - t0 });
      await delay(url.includes('slow') ? 300 : 10);
      return { complete: url.length, incomplete: 2, downloaded: 3 };
    };
    const reports = await scrapeAll(
      { infoHash, announceList: [['http://slow.example/announce'], ['udp://fast.example:80', 'http://slow2.example/announce']] },
      { scrape, timeoutMs: 4_000 },
    );
    expect(Date.now() - t0).toBeLessThan(600); // not 300 + 10 + 300
    expect(calls.every((c) => c.at < 100 && c.opts.timeoutMs === 4_000)).toBe(true);
    expect(reports).toEqual([
      { url: 'http://slow.example/announce', seeders: 28, leechers: 2, completed: 3 },
      { url: 'udp://fast.example:80', seeders: 21, leechers: 2, completed: 3 },
      { url: 'http://slow2.example/announce', seeders: 29, leechers: 2, completed: 3 },
    ]);
  });

  it('turns a failing tracker into its own error entry and still reports the others', async () => {
    const scrape: ScrapeFn = (url) =>
      url.startsWith('udp') ? Promise.reject(new TrackerError('udp tracker did not answer within 10 ms')) : Promise.resolve({ complete: 1, incomplete: 0, downloaded: 0 });
    const reports = await scrapeAll({ infoHash, announceList: [['udp://dead.example:1'], ['http://ok.example/announce']] }, { scrape });
    expect(reports).toEqual([
      { url: 'udp://dead.example:1', error: 'udp tracker did not answer within 10 ms' },
      { url: 'http://ok.example/announce', seeders: 1, leechers: 0, completed: 0 },
    ]);
  });

  it('skips unsupported schemes and HTTP trackers without a BEP 48 scrape URL, without asking them', async () => {
    const asked: string[] = [];
    const scrape: ScrapeFn = (url) => {
      asked.push(url);
      return Promise.resolve({ complete: 0, incomplete: 0, downloaded: 0 });
    };
    const reports = await scrapeAll(
      { infoHash, announceList: [['wss://tracker.example/ws', 'http://x.example/tracker.php', 'not a url', 'https://ok.example/announce.php?pk=1']] },
      { scrape },
    );
    expect(asked).toEqual(['https://ok.example/announce.php?pk=1']);
    expect(reports.map((r) => ('skipped' in r ? r.skipped : false))).toEqual([true, true, true, false]);
    expect(reports[0]).toEqual({ url: 'wss://tracker.example/ws', error: 'unsupported tracker URL scheme', skipped: true });
    expect(reports[1]).toMatchObject({ error: expect.stringMatching(/BEP 48/) });
  });

  it('bounds a transport that never settles to its budget (plus a short grace)', async () => {
    const scrape: ScrapeFn = () => new Promise(() => {});
    const t0 = Date.now();
    const reports = await scrapeAll({ infoHash, announceList: [['udp://hang.example:1']] }, { scrape, timeoutMs: 100 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(reports).toEqual([{ url: 'udp://hang.example:1', error: 'tracker did not answer within 100 ms' }]);
  });

  it('asks the first MAX_SCRAPED_TRACKERS in tier order, at most SCRAPE_CONCURRENCY at once (a socket each), and no more', async () => {
    let inFlight = 0;
    let most = 0;
    const asked: string[] = [];
    const scrape: ScrapeFn = async (url) => {
      asked.push(url);
      most = Math.max(most, ++inFlight);
      await delay(1);
      inFlight--;
      return { complete: 1, incomplete: 0, downloaded: 0 };
    };
    const urls = Array.from({ length: MAX_SCRAPED_TRACKERS + 50 }, (_, i) => `udp://127.0.0.1:1/${i}`);
    const reports = await scrapeAll({ infoHash, announceList: urls.map((u) => [u]) }, { scrape });
    expect(SCRAPE_CONCURRENCY).toBe(32);
    expect(MAX_SCRAPED_TRACKERS).toBe(200);
    expect(most).toBe(SCRAPE_CONCURRENCY);
    expect(asked).toEqual(urls.slice(0, MAX_SCRAPED_TRACKERS));
    expect(reports.map((r) => r.url)).toEqual(urls.slice(0, MAX_SCRAPED_TRACKERS));
    expect(reports.every((r) => 'seeders' in r)).toBe(true);
    expect(formatScrape(reports, 50).trimEnd().split('\n').at(-1)).toBe('  ... and 50 more not asked (tt asks the first 200 trackers)');
  });

  it('with no trackers resolves to an empty list', async () => {
    expect(await scrapeAll({ infoHash, announceList: [] })).toEqual([]);
  });
});

describe('formatScrape', () => {
  it('prints one line per tracker, tracker text sanitized', () => {
    const text = formatScrape([
      { url: 'udp://a.example:1', seeders: 5, leechers: 2, completed: 9 },
      { url: 'http://b.example/announce', error: 'tracker refused: \x1b[31mgo away' },
      { url: 'wss://c.example/\u202eevil', error: 'unsupported tracker URL scheme', skipped: true },
    ]);
    expect(text).toBe(
      'Scrape:\n' +
        '  udp://a.example:1  seeders 5  leechers 2  completed 9\n' +
        '  http://b.example/announce  error: tracker refused: \ufffd[31mgo away\n' +
        '  wss://c.example/\ufffdevil  skipped: unsupported tracker URL scheme\n',
    );
    expect(formatScrape([])).toBe('Scrape:      no trackers\n');
  });
});

describe('scrapeAll over the real transports (embedded tracker on loopback)', () => {
  it('reads the same swarm over HTTP and UDP, and a closed port as an error', async () => {
    const server = await startTrackerServer();
    cleanups.push(() => server.close());
    const base = { infoHash, peerId: Buffer.alloc(20, 7), uploaded: 0, downloaded: 0, key: 1, event: 'started' as const };
    await announceUdp(server.udpUrl, { ...base, port: 9001, left: 0 });
    await announceUdp(server.udpUrl, { ...base, peerId: Buffer.alloc(20, 8), port: 9002, left: 100 });
    const dead = `http://127.0.0.1:${server.port}/nothing/announce`; // HTTP 404 from a live server
    const reports = await scrapeAll({ infoHash, announceList: [[server.httpUrl], [server.udpUrl, dead]] }, { timeoutMs: 3_000 });
    expect(reports[0]).toEqual({ url: server.httpUrl, seeders: 1, leechers: 1, completed: 0 });
    expect(reports[1]).toEqual({ url: server.udpUrl, seeders: 1, leechers: 1, completed: 0 });
    expect(reports[2]).toMatchObject({ url: dead, error: expect.stringMatching(/HTTP 404/) });
  });
});
