/**
 * The fixture both real-client suites start from: a ~3 MiB multi-file layout
 * whose files end inside pieces (one empty file, nested folders), a torrent of
 * it made by libtorrent, and an opentracker on 127.0.0.1 that whitelists it;
 * useTrackedTorrent() wraps it in a test file's before/after hooks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startOpentracker, type OpentrackerHandle } from '../opentracker.js';
import { writeMultiFileData } from './data.js';
import { ltCreate } from './libtorrent.js';
import { killAll } from './process.js';

export const INTEROP_PIECE_LENGTH = 32 * 1024;
export const INTEROP_LAYOUT: Readonly<Record<string, number>> = {
  'a.bin': 1_000_003,
  'empty.txt': 0,
  'sub/b.bin': 65_537,
  'sub/deeper/c.bin': 7,
  'sub/d.bin': 2_000_001,
  'z.bin': 1,
};

export interface TrackedTorrent {
  /** temp folder holding everything below (the caller removes it) */
  dir: string;
  /** the seeders' --dir: holds multi/... */
  seedDir: string;
  /** seedDir/multi, the source to compare downloads with */
  source: string;
  torrent: string;
  infoHash: string;
  tracker: OpentrackerHandle;
  pieceCount: number;
}

export async function makeTrackedTorrent(prefix: string): Promise<TrackedTorrent> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const seedDir = join(dir, 'seed');
  const source = await writeMultiFileData(seedDir, 'multi', INTEROP_LAYOUT);
  // the info hash (and so the whitelist) does not depend on the tracker URL
  const infoHash = await ltCreate(source, join(dir, 'bare.torrent'), { pieceLength: INTEROP_PIECE_LENGTH });
  const tracker = await startOpentracker([Buffer.from(infoHash, 'hex')]);
  const torrent = join(dir, 'multi.torrent');
  await ltCreate(source, torrent, { pieceLength: INTEROP_PIECE_LENGTH, trackers: [tracker.httpUrl] });
  const total = Object.values(INTEROP_LAYOUT).reduce((a, b) => a + b, 0);
  return { dir, seedDir, source, torrent, infoHash, tracker, pieceCount: Math.ceil(total / INTEROP_PIECE_LENGTH) };
}

/**
 * The lifecycle of a test file built on the tracked torrent: made before all
 * tests, every started process killed after each, tracker stopped and folder
 * removed at the end. The returned object is filled in by the beforeAll hook.
 */
export function useTrackedTorrent(prefix: string): TrackedTorrent {
  const t = {} as TrackedTorrent;
  beforeAll(async () => {
    Object.assign(t, await makeTrackedTorrent(prefix));
  });
  afterEach(async () => {
    await killAll();
  });
  afterAll(async () => {
    await killAll();
    await t.tracker?.stop();
    if (t.dir) await rm(t.dir, { recursive: true, force: true });
  });
  return t;
}
