import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { phaseLabel, shownSizes, summarize } from '../../../src/cli/run-session.js';
import { statusText } from '../../../src/cli/reporter.js';
import type { SessionStats, TorrentSession } from '../../../src/session/torrent-session.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection } from '../../../src/metainfo/selection.js';

/** Just what summarize() reads from a session. */
function fakeSession(stats: Partial<SessionStats>, complete = true): TorrentSession {
  const totalLength = 4 * 1024 * 1024;
  const have = complete ? Bitfield.full(16) : new Bitfield(16);
  const full: SessionStats = {
    pieceCount: 16,
    have: have.count,
    totalLength,
    left: complete ? 0 : totalLength,
    wantedPieces: 16,
    wantedHave: have.count,
    wantedLength: totalLength,
    wantedLeft: complete ? 0 : totalLength,
    downloaded: totalLength,
    uploaded: 0,
    verifiedBytes: totalLength,
    downloadRate: 0,
    uploadRate: 0,
    peers: 0,
    knownPeers: 0,
    failedPieces: 0,
    bannedPeers: 0,
    pendingBytes: 0,
    wastedBytes: 0,
    directWriteBytes: 0,
    webSeedBytes: 0,
    directWritesOff: undefined,
    ...stats,
  };
  const meta = { name: 'data.bin', totalLength, pieceLength: totalLength / 16, files: [{ path: ['data.bin'], length: totalLength, offset: 0, padding: false }] };
  return { stats: () => full, meta, have, done: complete, selection: undefined } as unknown as TorrentSession;
}

describe('summarize', () => {
  it('names failed pieces, wasted bytes and bans only when there were any', () => {
    const clean = summarize(fakeSession({}), 2);
    expect(clean.line).toMatch(/^complete: data\.bin 4\.00 MiB\/4\.00 MiB in /);
    expect(clean.line).not.toMatch(/failed|wasted|banned/);
    const rough = summarize(fakeSession({ failedPieces: 2, wastedBytes: 3 * 1024 * 1024, bannedPeers: 1 }), 2);
    expect(rough.line).toContain(' | 2 pieces failed | 3.00 MiB wasted | 1 peers banned');
    expect(rough.fields).toMatchObject({ failedPieces: 2, wastedBytes: 3 * 1024 * 1024, bannedPeers: 1, complete: true });
  });

  it('with a file selection: counts the wanted bytes and says how many files', () => {
    const session = fakeSession({ wantedPieces: 4, wantedHave: 4, wantedLength: 1024 * 1024, wantedLeft: 0, left: 3 * 1024 * 1024 }, false);
    Object.assign(session, { done: true, selection: { selectedCount: 1, fileCount: 2 }, meta: { name: 'data', totalLength: 4 * 1024 * 1024, pieceLength: 256 * 1024, files: [] } });
    const { line, fields } = summarize(session, 1);
    expect(line).toMatch(/^complete: data \(1 of 2 files\) 1\.00 MiB\/1\.00 MiB in /);
    expect(fields).toMatchObject({ complete: true, wantedPieces: 4, wantedHave: 4, selectedFiles: 1 });
  });
});

describe('summarize: time and rate are the download\'s, seeding after it is said apart', () => {
  it('with --seed --seed-time: the average is over the download, then "seeded" for the rest', () => {
    const { line, fields } = summarize(fakeSession({}), 34, { downloadSeconds: 4, seededSeconds: 30 });
    // 4 MiB in 4 s, not over the 34 s of the whole run
    expect(line).toMatch(/^complete: data\.bin 4\.00 MiB\/4\.00 MiB in 4\.0s \(avg 1\.00 MiB\/s\), then seeded 30s \| /);
    expect(fields).toMatchObject({ seconds: 34, downloadSeconds: 4, seededSeconds: 30 });
  });

  it('tt seed: the seeding time and the upload, not a download time and average of nothing', () => {
    const { line } = summarize(fakeSession({ downloaded: 0, uploaded: 8 * 1024 * 1024 }), 34, { downloadSeconds: 4, seededSeconds: 30 }, 'seed');
    expect(line).toBe('seeded: data.bin 4.00 MiB/4.00 MiB for 30s | uploaded 8.00 MiB ratio 2.00');
    // a partial copy never completes: its whole run was seeding
    expect(summarize(fakeSession({ downloaded: 0, uploaded: 0 }, false), 12, { downloadSeconds: 12, seededSeconds: 0 }, 'seed').line).toMatch(/^seeded: data\.bin 0 B\/4\.00 MiB for 12s \| /);
  });

  it('without timing (or no seeding): the whole run, no "seeded"', () => {
    expect(summarize(fakeSession({}), 4).line).toMatch(/ in 4\.0s \(avg 1\.00 MiB\/s\) \| /);
    expect(summarize(fakeSession({}), 4, { downloadSeconds: 4, seededSeconds: 0 }).line).not.toContain('seeded');
  });
});

describe('sizes shown to people leave BEP 47 padding out; piece math does not', () => {
  /** 4 pieces of 16 KiB: x.bin 10000, pad 6384, y.bin 10000, pad 6384, z.bin 16384 + 1000 over 2 pieces. */
  function paddedSession(havePieces: number[]): TorrentSession {
    const P = 16_384;
    const files = [
      { path: ['t', 'x.bin'], length: 10_000, offset: 0, padding: false },
      { path: ['t', '.pad', '6384'], length: 6_384, offset: 10_000, padding: true },
      { path: ['t', 'y.bin'], length: 10_000, offset: P, padding: false },
      { path: ['t', '.pad', '6384'], length: 6_384, offset: P + 10_000, padding: true },
      { path: ['t', 'z.bin'], length: P + 1_000, offset: 2 * P, padding: false },
    ];
    const totalLength = 3 * P + 1_000;
    const have = new Bitfield(4);
    for (const i of havePieces) have.set(i);
    const verified = havePieces.reduce((n, i) => n + Math.min(P, totalLength - i * P), 0);
    const session = fakeSession({ wantedLength: totalLength, wantedLeft: totalLength - verified, totalLength }, false);
    Object.assign(session, { meta: { name: 't', totalLength, pieceLength: P, files }, have });
    return session;
  }

  it('progress and the summary count the files: 36.51 KiB, not the 48.98 KiB of the pieces', () => {
    const all = paddedSession([0, 1, 2, 3]);
    expect(shownSizes(all)).toEqual({ done: 37_384, total: 37_384 });
    const half = paddedSession([0, 3]);
    expect(shownSizes(half)).toEqual({ done: 10_000 + 1_000, total: 37_384 });
    expect(summarize(all, 1).line).toContain(' 36.51 KiB/36.51 KiB in ');
    expect(statusText(half.stats(), shownSizes(half))).toMatch(/^10\.74 KiB\/36\.51 KiB \| /);
    // without sizes: the piece bytes, as before
    expect(statusText(half.stats())).toMatch(/^16\.98 KiB\/48\.98 KiB \| /);
  });
});

describe('with --select, sizes shown are the selected files\' bytes, not their pieces\'', () => {
  it('one 10,000-byte file of a torrent in 256 KiB pieces: 9.77 KiB, before and after it is verified', () => {
    const P = 256 * 1024;
    const files = [
      { path: ['t', 'big.bin'], length: P + 5_000, offset: 0, padding: false },
      { path: ['t', 'small.txt'], length: 10_000, offset: P + 5_000, padding: false },
      { path: ['t', 'rest.bin'], length: P, offset: P + 15_000, padding: false },
    ];
    const totalLength = 2 * P + 15_000;
    const meta = { name: 't', totalLength, pieceLength: P, pieceCount: 3, files } as unknown as Metainfo;
    const selection = new FileSelection(meta, [false, true, false]);
    // small.txt lies in piece 1 only: the wanted piece is 256 KiB
    expect(selection.wanted.count).toBe(1);
    const session = (have: number[]): TorrentSession => {
      const bits = new Bitfield(3);
      for (const i of have) bits.set(i);
      const s = fakeSession({ wantedPieces: 1, wantedHave: bits.has(1) ? 1 : 0, wantedLength: P, wantedLeft: bits.has(1) ? 0 : P }, false);
      return Object.assign(s, { meta, have: bits, selection, done: bits.has(1) });
    };
    expect(shownSizes(session([]))).toEqual({ done: 0, total: 10_000 });
    expect(shownSizes(session([1]))).toEqual({ done: 10_000, total: 10_000 });
    // a piece outside the selection (kept from an earlier run) is not counted
    expect(shownSizes(session([0]))).toEqual({ done: 0, total: 10_000 });
    expect(summarize(session([1]), 1).line).toMatch(/^complete: t \(1 of 3 files\) 9\.77 KiB\/9\.77 KiB in /);
  });
});

describe('phaseLabel', () => {
  it('tt seed says seeding, also with --partial (not done); a download says downloading, then done or seeding', () => {
    expect(phaseLabel('seed', false, false)).toBe('seeding');
    expect(phaseLabel('seed', true, false)).toBe('seeding');
    expect(phaseLabel('download', false, true)).toBe('downloading');
    expect(phaseLabel('download', false, false)).toBe('downloading');
    expect(phaseLabel('download', true, true)).toBe('done');
    expect(phaseLabel('download', true, false)).toBe('seeding');
  });
});
