/**
 * Issue 5, when no tracker helps (built cli): every tracker refusing with `failure
 * reason` -> exit 8 (TRACKER) at once, the reason on stderr and one `tt:` error line;
 * trackers that refuse connections -> exit 8 at once; trackers that stay silent ->
 * exit 5 (NO_PEERS) when --peer-timeout runs out. Always bounded.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../../src/core/errors.js';
import { createTorrent } from '../../../src/metainfo/create.js';
import { killAll } from '../../helpers/clients/process.js';
import { LOOPBACK, closedPort, ensureBuilt, refusingHttpTracker, runTt, silentUdpTracker, type Cleanup, type TtResult } from './cli-helpers.js';

const REASON = 'torrent not registered with this tracker';
const cleanups: Cleanup[] = [];
let work: string;

beforeAll(async () => {
  ensureBuilt();
  work = await mkdtemp(join(tmpdir(), 'tt-refusals-'));
}, 150_000);

afterAll(async () => {
  await killAll();
  for (const c of cleanups.splice(0).reverse()) await c();
  if (work) await rm(work, { recursive: true, force: true });
});

let counter = 0;
/** A small torrent (no seeder anywhere) with this announce-list. */
async function torrent(announceList: string[][]): Promise<string> {
  const path = join(work, `t${++counter}.torrent`);
  await writeFile(path, createTorrent(`nobody-has-${counter}`, Buffer.alloc(100_000, counter), { pieceLength: 32_768, announceList }));
  return path;
}

function download(t: string, extra: string[] = []): Promise<TtResult> {
  return runTt(['download', t, '--out', join(work, 'out'), ...LOOPBACK, '--peer-timeout', '5', ...extra], 30_000);
}

/** Exactly one `tt: ` line on stderr, the last one, no stack trace. */
function errorLine(r: TtResult): string {
  const errors = r.stderrLines.filter((l) => l.startsWith('tt: '));
  expect(errors, r.stderr).toHaveLength(1);
  expect(r.stderrLines.at(-1)).toBe(errors[0]);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  return errors[0]!;
}

describe('every tracker refuses (failure reason)', () => {
  it('exits 8 at once; stderr names each refusal and ends with one error line', async () => {
    const tracker = await refusingHttpTracker(REASON, cleanups);
    const t = await torrent([[`${tracker.base}/a/announce`], [`${tracker.base}/b/announce`]]);
    const r = await download(t);
    expect(r.code, r.stderr).toBe(EXIT_CODES.TRACKER);
    expect(r.ms).toBeLessThan(5_000); // not the 5 s peer timeout: the refusal is final
    expect(errorLine(r)).toMatch(/^tt: every tracker failed/);
    for (const tier of ['a', 'b']) {
      expect(r.stderr).toContain(`warning: tracker ${tracker.base}/${tier}/announce: tracker refused: ${REASON}`);
    }
    expect(tracker.requests()).toBeGreaterThanOrEqual(2); // both tiers were asked (plus `stopped`s)
  });

  it('with --quiet prints only the one error line', async () => {
    const tracker = await refusingHttpTracker(REASON, cleanups);
    const r = await download(await torrent([[`${tracker.base}/announce`]]), ['--quiet']);
    expect(r.code).toBe(EXIT_CODES.TRACKER);
    expect(r.stdout).toBe('');
    expect(r.stderrLines).toHaveLength(1);
    expect(errorLine(r)).toMatch(/^tt: every tracker failed/);
  });
});

describe('every tracker unreachable', () => {
  it('connections refused (UDP and HTTP) -> exit 8 at once', async () => {
    const t = await torrent([[`udp://127.0.0.1:${await closedPort()}`], [`http://127.0.0.1:${await closedPort()}/announce`]]);
    const r = await download(t);
    expect(r.code, r.stderr).toBe(EXIT_CODES.TRACKER);
    expect(r.ms).toBeLessThan(5_000);
    expect(errorLine(r)).toMatch(/^tt: every tracker failed/);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
  });

  it('a silent UDP tracker -> exit 5 when --peer-timeout (5 s) runs out, not after the UDP budget', async () => {
    const t = await torrent([[await silentUdpTracker(cleanups)]]);
    const r = await download(t, ['--json']);
    expect(r.code, r.stderr).toBe(EXIT_CODES.NO_PEERS);
    expect(r.ms).toBeGreaterThanOrEqual(4_500);
    expect(r.ms).toBeLessThan(12_000); // 5 s + at most 3 s telling the silent tracker `stopped` + start-up
    expect(r.stderrLines).toEqual([expect.stringMatching(/^tt: no peer connected for 5 s/)]);
  });
});
