/**
 * `tt info --scrape` (the built CLI) on a torrent listing more trackers than it
 * asks: under a small descriptor limit (ulimit -n 128) every tracker asked
 * answers (no `EMFILE`: at most 32 sockets at once, not one per tracker), only
 * the first 200 are asked, and the rest are counted as not asked, in the text
 * and in --json. The trackers are all the embedded tracker on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../../src/metainfo/create.js';
import { startTrackerServer, type TrackerServer } from '../../../src/tracker/server.js';
import { ensureBuilt } from '../../helpers/build.js';
import { ROOT } from '../../helpers/cli-sync.js';

let work: string;
let server: TrackerServer;
let torrentPath: string;
const TRACKERS = 260;

beforeAll(async () => {
  await ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tt-info-scrape-'));
  server = await startTrackerServer({ host: '127.0.0.1' });
  const urls = Array.from({ length: TRACKERS }, (_, i) => `udp://127.0.0.1:${server.port}/${i}`);
  torrentPath = join(work, 't.torrent');
  await writeFile(torrentPath, createTorrent('f.bin', Buffer.alloc(1000, 7), { announceList: urls.map((u) => [u]) }));
}, 130_000);
afterAll(async () => {
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

/** tt info with a descriptor limit; async, so the tracker in this process keeps answering. */
function infoUnderLimit(extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['info', torrentPath, '--scrape', '--timeout', '5s', ...extra].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', `ulimit -n 128 && exec '${process.execPath}' '${join(ROOT, 'bin/tt.js')}' ${args}`], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

describe('tt info --scrape with many trackers', () => {
  it('asks the first 200, 32 at a time: every one answers under ulimit -n 128, the rest are said not asked', async () => {
    const r = await infoUnderLimit([]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const scraped = lines.filter((l) => /^ {2}udp:\/\//.test(l));
    expect(scraped).toHaveLength(200);
    expect(scraped.filter((l) => !/ seeders 0 {2}leechers 0 {2}completed 0$/.test(l))).toEqual([]);
    expect(lines).toContain(`  ... and ${TRACKERS - 200} more not asked (tt asks the first 200 trackers)`);
  }, 90_000);

  it('--json: 200 scrape entries, all answered, and scrapeNotAsked', async () => {
    const r = await infoUnderLimit(['--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { scrape: { url: string; seeders?: number; error?: string }[]; scrapeNotAsked: number };
    expect(doc.scrape).toHaveLength(200);
    expect(doc.scrape.filter((s) => s.seeders !== 0)).toEqual([]);
    expect(doc.scrape.map((s) => s.url)).toEqual(Array.from({ length: 200 }, (_, i) => `udp://127.0.0.1:${server.port}/${i}`));
    expect(doc.scrapeNotAsked).toBe(TRACKERS - 200);
  }, 90_000);
});
