/**
 * SIGTERM through the built binary, at the moments a review found wanting:
 * - `tt verify` stopped at any moment of a check (hash tasks on the worker
 *   threads) always ends with 130 and its one line; it once exited 0 saying
 *   nothing now and then (hasher.ts: a worker answering after close() was
 *   unref'd, so Node ended with the check's promise never settled);
 * - a signal before the first phase registers (the torrent still being read)
 *   is kept for that phase: 130 and one line for download, seed, verify and
 *   tracker, not death by SIGTERM; `tt info` keeps the default action.
 * The early moment is made exact with a FIFO as the torrent file: tt is
 * known to be reading it (our non-blocking open for writing succeeds only
 * once tt has it open), and it goes on only once we write the torrent.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rdict, torrent as torrentFile } from '../../helpers/torrent-factory.js';
import { stopAll, trackDir } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, startTt, type TtProcess } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** 4 MiB pieces: read runs of two pieces, hashed on the worker threads. */
const PIECE = 4 * 1024 * 1024;

/** A sparse file of `size` bytes under `out`, and `torrent` for it with made-up piece hashes (nothing matches). */
function sparseTorrent(size: number): { work: string; torrent: string; out: string } {
  const work = mkdtempSync(join(tmpdir(), 'tt-sigterm-'));
  trackDir(work);
  const out = join(work, 'out');
  mkdirSync(out);
  const fd = openSync(join(out, 'big.bin'), 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  const info = rdict([['length', size], ['name', 'big.bin'], ['piece length', PIECE], ['pieces', randomBytes((size / PIECE) * 20)]]);
  const torrentPath = join(work, 'big.torrent');
  writeFileSync(torrentPath, torrentFile(info));
  return { work, torrent: torrentPath, out };
}

async function expectStopped(p: TtProcess, line: RegExp): Promise<void> {
  const exit = await p.waitForExit(30_000);
  expect(exit, p.describe()).toEqual({ code: 130, signal: null });
  expectOneErrorLine(p, line);
}

describe('tt verify stopped by SIGTERM while checking', () => {
  it('always exits 130 with its one line, whenever the signal comes (once or twice)', async () => {
    // 8 GiB of zeros against made-up hashes: seconds of hashing on two cores, nothing matches
    const { torrent, out } = sparseTorrent(8 * 1024 ** 3);
    // ms after the `verifying` line (checking starts right after it); `twice`: a second SIGTERM soon after,
    // as `timeout` sends (to tt, then to its process group)
    const moments = [
      { after: 0, twice: false },
      { after: 5, twice: true },
      { after: 30, twice: false },
      { after: 120, twice: true },
      { after: 250, twice: false },
      { after: 500, twice: false },
      { after: 900, twice: true },
      { after: 1500, twice: false },
    ];
    for (const { after, twice } of moments) {
      const p = startTt(['verify', torrent, '--dir', out, '--json']);
      await p.waitForEvent('info', 15_000, (e) => String(e.message).startsWith('verifying'));
      if (after > 0) await sleep(after);
      p.signal('SIGTERM');
      if (twice) {
        await sleep(Math.floor(Math.random() * 10));
        p.signal('SIGTERM');
      }
      await expectStopped(p, /^tt: interrupted by SIGTERM while verifying; nothing written$/);
      expect(p.events.some((e) => e.event === 'summary' || e.event === 'checked'), p.describe()).toBe(false);
    }
  }, 120_000);
});

describe('SIGTERM before the first phase (the torrent still being read)', () => {
  /** Starts tt with a FIFO as the torrent; once tt is reading it, SIGTERM, then the torrent's bytes. */
  async function signalWhileReading(args: (fifo: string) => string[], torrentBytes: Buffer, work: string): Promise<TtProcess> {
    const fifo = join(work, `early-${Math.random().toString(36).slice(2)}.torrent`);
    execFileSync('mkfifo', [fifo]);
    const p = startTt(args(fifo));
    let fd: number | undefined;
    const deadline = Date.now() + 15_000;
    while (fd === undefined) {
      try {
        fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK); // ENXIO until tt opens it for reading
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline || p.exit) throw new Error(`tt never opened the torrent: ${p.describe()}`);
        await sleep(5);
      }
    }
    p.signal('SIGTERM');
    await sleep(50); // delivered (and, on tt without early handlers, fatal) before the read ends
    try {
      writeSync(fd, torrentBytes);
    } catch {
      // tt is gone already: its exit status says the rest
    }
    closeSync(fd);
    return p;
  }

  it('download, seed, verify and tracker: 130 and one line naming SIGTERM', async () => {
    const { work, torrent, out } = sparseTorrent(64 * 1024 * 1024);
    const bytes = readFileSync(torrent);
    const dlOut = join(work, 'dl');
    const cases: { args: (t: string) => string[]; line: RegExp }[] = [
      { args: (t) => ['download', t, '--out', dlOut, '--no-trackers', '--peer', '127.0.0.1:9', ...LOOPBACK, '--json'], line: /^tt: interrupted by SIGTERM/ },
      { args: (t) => ['seed', t, '--dir', out, '--partial', ...LOOPBACK, '--json'], line: /^tt: interrupted by SIGTERM/ },
      { args: (t) => ['verify', t, '--dir', out, '--json'], line: /^tt: interrupted by SIGTERM while verifying; nothing written$/ },
      { args: (t) => ['tracker', '--bind', '127.0.0.1', '--port', '0', '--allow', t, '--json'], line: /^tt: tracker stopped by SIGTERM$/ },
    ];
    for (const { args, line } of cases) {
      const p = await signalWhileReading(args, bytes, work);
      await expectStopped(p, line);
    }
  }, 120_000);

  it('tt info keeps the default action: ended by SIGTERM', async () => {
    const { work, torrent } = sparseTorrent(64 * 1024 * 1024);
    const p = await signalWhileReading((t) => ['info', t], readFileSync(torrent), work);
    const exit = await p.waitForExit(30_000);
    expect(exit, p.describe()).toEqual({ code: null, signal: 'SIGTERM' });
  });
});
