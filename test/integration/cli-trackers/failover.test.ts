/**
 * Issue 5, tracker failover end to end (built cli, separate processes): with a silent
 * UDP tracker in tier 1 and a closed HTTP port in tier 2, `tt download` still reaches
 * the live tracker of tier 3 in seconds (BEP 12 order, ~3 s happy-eyeballs fallback),
 * not after the UDP retry schedule; `tt info --scrape` lists dead trackers and exits 0.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTrackerServer, type TrackerServer } from '../../../src/tracker/server.js';
import { clearUdpConnectionCache } from '../../../src/tracker/udp.js';
import { killAll } from '../../helpers/clients/process.js';
import { expectSameData, makeFixture, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, closedPort, ensureBuilt, runTt, silentUdpTracker, torrentWith, tt, until, type Cleanup } from './cli-helpers.js';

/** The brief's bound on "time to the first peer" through two dead tiers. */
const FIRST_PEER_LIMIT_MS = 10_000;

const cleanups: Cleanup[] = [];
let fx: Fixture;
let live: TrackerServer;
let silentUdp: string;
let deadHttp: string;

beforeAll(async () => {
  ensureBuilt();
  fx = await makeFixture({ name: 'failover' });
  live = await startTrackerServer({ host: '127.0.0.1' });
  silentUdp = await silentUdpTracker(cleanups);
  deadHttp = `http://127.0.0.1:${await closedPort()}/announce`;
}, 150_000);

afterAll(async () => {
  await killAll();
  for (const c of cleanups.splice(0).reverse()) await c();
  await live?.close();
  if (fx) await rm(fx.work, { recursive: true, force: true });
  clearUdpConnectionCache();
});

type Event = Record<string, unknown>;

function events(stdout: string): Event[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
}

describe('tracker failover (tt download, built cli)', () => {
  it('skips a silent UDP tier and a refused HTTP tier and completes through tier 3 within seconds', async () => {
    const torrent = await torrentWith(fx, 'three-tiers', [[silentUdp], [deadHttp], [live.httpUrl]]);
    const seeder = tt(['seed', torrent, '--dir', fx.seedRoot, ...LOOPBACK, '--json']);
    await seeder.proc.waitForEventNamed('started', 30_000);
    await until('the seeder to reach the tier-3 tracker', () => live.swarmSize(fx.meta.infoHash).seeders === 1, 15_000);

    const out = join(fx.work, 'out');
    const r = await runTt(['download', torrent, '--out', out, ...LOOPBACK, '--json', '--peer-timeout', '30'], 60_000);
    expect(r.code, r.stderr + r.stdout.slice(-3000)).toBe(0);
    await expectSameData(fx, out);

    const evs = events(r.stdout);
    const startedAt = Number(evs.find((e) => e['event'] === 'started')?.['time']);
    const completeAt = Number(evs.find((e) => e['event'] === 'complete')?.['time']);
    const toComplete = completeAt - startedAt;
    // tier 1 is asked first and given the fallback delay (~3 s), tier 2 fails at once, tier 3 answers:
    // far from BEP 15's 15 s + 30 s + ... retransmissions, and from the 15 s request budget
    expect(toComplete, JSON.stringify(evs.slice(0, 12))).toBeGreaterThanOrEqual(2_000);
    expect(toComplete).toBeLessThan(FIRST_PEER_LIMIT_MS);
    const warnings = evs.filter((e) => e['event'] === 'warning').map((e) => String(e['message']));
    expect(warnings.some((m) => m.includes(deadHttp) && /ECONNREFUSED/.test(m)), warnings.join('\n')).toBe(true);
    expect(live.swarmSize(fx.meta.infoHash)).toEqual({ seeders: 1, leechers: 0 }); // the leecher said stopped on exit
    await seeder.proc.kill();
  }, 90_000);
});

describe('tt info --scrape against dead trackers', () => {
  it('prints one error line per tracker, lists unsupported ones as skipped, and exits 0 within the timeout', async () => {
    const torrent = await torrentWith(fx, 'all-dead', [[silentUdp], [deadHttp, 'wss://tracker.example/announce']]);
    const text = await runTt(['info', torrent, '--scrape', '--timeout', '2s'], 15_000);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toBe('');
    expect(text.ms).toBeLessThan(8_000);
    const scrapeSection = text.stdout.slice(text.stdout.indexOf('\nScrape:\n') + 1);
    expect(scrapeSection.split('\n')).toEqual([
      'Scrape:',
      `  ${silentUdp}  error: udp tracker did not answer within 2000 ms`,
      expect.stringMatching(new RegExp(`^  ${deadHttp.replace(/[.?/]/g, '\\$&')}  error: cannot reach tracker: .*ECONNREFUSED`)),
      '  wss://tracker.example/announce  skipped: unsupported tracker URL scheme',
      '',
    ]);

    const json = await runTt(['info', torrent, '--scrape', '--json', '--timeout', '1s'], 15_000);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { scrape: Event[] };
    expect(doc.scrape.map((e) => [e['url'], typeof e['error'], e['skipped'] ?? false, e['seeders']])).toEqual([
      [silentUdp, 'string', false, undefined],
      [deadHttp, 'string', false, undefined],
      ['wss://tracker.example/announce', 'string', true, undefined],
    ]);
  }, 40_000);
});
