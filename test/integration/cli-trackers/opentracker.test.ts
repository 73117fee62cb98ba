/**
 * Issue 5 end to end against a real opentracker on loopback: a `tt seed` and a
 * `tt download` (the built cli, separate processes) whose torrent names only
 * opentracker's udp:// (or only its http://) URL find each other through it, bytes
 * verified; `tt info --scrape` reads the seeder back over HTTP and UDP.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrapeHttp } from '../../../src/tracker/http.js';
import { clearUdpConnectionCache, scrapeUdp } from '../../../src/tracker/udp.js';
import { killAll } from '../../helpers/clients/process.js';
import { startOpentracker, type OpentrackerHandle } from '../../helpers/opentracker.js';
import { expectSameData, makeFixture, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, ensureBuilt, runTt, torrentWith, tt, until, type Tt } from './cli-helpers.js';

const SEEDER_ANNOUNCED_MS = 15_000;
const DOWNLOAD_MS = 60_000;

let ot: OpentrackerHandle;
let fxUdp: Fixture;
let fxHttp: Fixture;
let fxScrape: Fixture;

beforeAll(async () => {
  ensureBuilt();
  [fxUdp, fxHttp, fxScrape] = await Promise.all([
    makeFixture({ name: 'via-udp' }),
    makeFixture({ name: 'via-http' }),
    makeFixture({ name: 'scraped' }),
  ]);
  ot = await startOpentracker([fxUdp.meta.infoHash, fxHttp.meta.infoHash, fxScrape.meta.infoHash]);
}, 150_000);

afterAll(async () => {
  await killAll();
  await ot?.stop();
  for (const fx of [fxUdp, fxHttp, fxScrape]) if (fx) await rm(fx.work, { recursive: true, force: true });
  clearUdpConnectionCache();
});

/** `tt seed --json` on the fixture's data; resolves once opentracker counts it as a seeder. */
async function seedAndAnnounce(fx: Fixture, torrent: string): Promise<Tt> {
  const seeder = tt(['seed', torrent, '--dir', fx.seedRoot, ...LOOPBACK, '--json']);
  await seeder.proc.waitForEventNamed('started', 30_000);
  await until(
    'opentracker to count the tt seeder',
    async () => (await scrapeHttp(ot.httpUrl, fx.meta.infoHash, { timeoutMs: 2_000 }).catch(() => undefined))?.complete === 1,
    SEEDER_ANNOUNCED_MS,
  );
  return seeder;
}

async function downloadThrough(fx: Fixture, tracker: string, label: string): Promise<void> {
  const torrent = await torrentWith(fx, label, [[tracker]]);
  const seeder = await seedAndAnnounce(fx, torrent);
  const out = join(fx.work, `${label}-out`);
  // no --peer: the tracker is the only way the two can meet
  const r = await runTt(['download', torrent, '--out', out, ...LOOPBACK, '--json', '--peer-timeout', '30'], DOWNLOAD_MS);
  expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
  await expectSameData(fx, out);
  const done = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e['event'] === 'done');
  expect(done).toMatchObject({ complete: true, pieceCount: fx.meta.pieceCount, have: fx.meta.pieceCount });
  await seeder.proc.kill();
  // SIGTERM: the seeder said `stopped`, so opentracker forgets it
  await until('opentracker to drop the stopped seeder', async () => (await scrapeUdp(ot.udpUrl, fx.meta.infoHash, { timeoutMs: 2_000 })).complete === 0, 10_000);
}

describe('tt seed + tt download meet through opentracker', () => {
  it('over UDP (BEP 15) only: the torrent announces nothing but udp://', async () => {
    await downloadThrough(fxUdp, ot.udpUrl, 'udp-only');
  }, 120_000);

  it('over HTTP only', async () => {
    await downloadThrough(fxHttp, ot.httpUrl, 'http-only');
  }, 120_000);
});

describe('tt info --scrape against opentracker', () => {
  it('counts the announced tt seeder over HTTP and over UDP (JSON and text)', async () => {
    const torrent = await torrentWith(fxScrape, 'scrape', [[ot.httpUrl], [ot.udpUrl]]);
    const seeder = await seedAndAnnounce(fxScrape, torrent);

    const json = await runTt(['info', torrent, '--scrape', '--json', '--timeout', '5s'], 20_000);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe('');
    const doc = JSON.parse(json.stdout) as { infoHash: string; scrape: Record<string, unknown>[] };
    expect(doc.infoHash).toBe(fxScrape.meta.infoHashHex);
    expect(doc.scrape).toHaveLength(2);
    for (const [i, url] of [ot.httpUrl, ot.udpUrl].entries()) {
      const entry = doc.scrape[i]!;
      expect(entry['url']).toBe(url);
      expect(entry['error'], JSON.stringify(entry)).toBeUndefined();
      expect(entry['seeders']).toBeGreaterThanOrEqual(1);
      expect(Object.keys(entry).sort()).toEqual(['completed', 'leechers', 'seeders', 'url']);
    }

    const text = await runTt(['info', torrent, '--scrape'], 20_000);
    expect(text.code).toBe(0);
    const escaped = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expect(text.stdout).toMatch(new RegExp(`^Scrape:\\n  ${escaped(ot.httpUrl)}  seeders [1-9]\\d*  leechers \\d+  completed \\d+$`, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^  ${escaped(ot.udpUrl)}  seeders [1-9]\\d*  leechers \\d+  completed \\d+$`, 'm'));
    await seeder.proc.kill();
  }, 90_000);
});
