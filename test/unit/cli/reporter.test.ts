/** cli/reporter.ts on a terminal: what the progress bar leaves on screen when the phase changes. */
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { Reporter } from '../../../src/cli/reporter.js';
import type { SessionStats } from '../../../src/session/torrent-session.js';

function stats(have: number, rate: number): SessionStats {
  const total = 100;
  const piece = 16_384;
  return {
    pieceCount: total, have, totalLength: total * piece, left: (total - have) * piece,
    wantedPieces: total, wantedHave: have, wantedLength: total * piece, wantedLeft: (total - have) * piece,
    downloaded: have * piece, uploaded: 0, verifiedBytes: have * piece, downloadRate: rate, uploadRate: 0,
    peers: 1, knownPeers: 1, failedPieces: 0, bannedPeers: 0, pendingBytes: 0, wastedBytes: 0,
    directWriteBytes: 0, webSeedBytes: 0, directWritesOff: undefined,
  };
}

afterEach(() => vi.restoreAllMocks());

describe('the terminal progress bar across a phase change (downloading -> done)', () => {
  it('the downloading bar ends at 100%, not on its last frame, and the done bar starts at 100%, not 0%', () => {
    const frames: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      frames.push(String(chunk));
      return true;
    });
    // cli-progress draws only on a terminal: this stream says it is one, 200 columns wide
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    const columns = Object.getOwnPropertyDescriptor(process.stderr, 'columns');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    Object.defineProperty(process.stderr, 'columns', { value: 200, configurable: true });
    onTestFinished(() => {
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
      if (columns) Object.defineProperty(process.stderr, 'columns', columns);
      else delete (process.stderr as { columns?: number }).columns;
    });
    const reporter = new Reporter('tty');
    reporter.progress(stats(82, 1_000_000), 'downloading');
    reporter.progress(stats(100, 0), 'done');
    reporter.close();
    // eslint-disable-next-line no-control-regex
    const screen = frames.join('').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const downloading = [...screen.matchAll(/downloading .*? (\d+)% (\d+)\/100/g)].map((m) => m[1]);
    const done = [...screen.matchAll(/done .*? (\d+)% (\d+)\/100/g)].map((m) => m[1]);
    expect(downloading.at(-1), screen).toBe('100');
    expect(done.length, screen).toBeGreaterThan(0);
    expect(done.every((p) => p === '100'), screen).toBe(true);
  });
});

describe('--json messages', () => {
  it('info and warning texts carry no control, C1 or bidi characters (a magnet dn= or tracker URL quoted in them)', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const reporter = new Reporter('json');
    reporter.info('fetching the metadata (\u001b[31mRED\u202e\u009b)');
    reporter.warn('tracker http://\u0000: unsupported tracker skipped');
    const messages = lines.map((l) => (JSON.parse(l) as { message: string }).message);
    expect(messages).toHaveLength(2);
    for (const m of messages) expect(m).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(messages[0]).toContain('RED');
  });
});

