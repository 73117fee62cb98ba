import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { summarize } from '../../../src/cli/run-session.js';
import type { SessionStats, TorrentSession } from '../../../src/session/torrent-session.js';

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
  return { stats: () => full, meta: { name: 'data.bin', totalLength }, have, done: complete, selection: undefined } as unknown as TorrentSession;
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
    Object.assign(session, { done: true, selection: { selectedCount: 1, fileCount: 2 }, meta: { name: 'data', totalLength: 4 * 1024 * 1024 } });
    const { line, fields } = summarize(session, 1);
    expect(line).toMatch(/^complete: data \(1 of 2 files\) 1\.00 MiB\/1\.00 MiB in /);
    expect(fields).toMatchObject({ complete: true, wantedPieces: 4, wantedHave: 4, selectedFiles: 1 });
  });
});
