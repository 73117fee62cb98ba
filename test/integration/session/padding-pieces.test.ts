/**
 * A download session and pieces wholly in BEP 47 padding: they are had from
 * the start (their hash, that of zeros, was proved when the torrent was
 * parsed), so they are never asked of a peer nor waited for; a seed serves
 * them as zeros. The torrent: 10 B of data, 16 MiB of padding, 10 B of data,
 * in 256 KiB pieces (64 pieces of padding).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { piecesIn, wholePaddingPieces } from '../../../src/metainfo/padding-pieces.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { dataOf, paddedTorrent, type Spec } from '../../helpers/padded-torrent.js';
import { startSession, stopAll, trackDir, whenComplete } from '../../helpers/swarm.js';

afterEach(stopAll);

const P = 256 * 1024;
const FILES: Spec[] = [
  { path: ['a'], length: 10 },
  { path: ['.pad', '1'], length: P - 10, pad: true },
  { path: ['.pad', '2'], length: 64 * P, pad: true },
  { path: ['b'], length: 10 },
];
const meta = parseTorrent(paddedTorrent(FILES, P));
const PADDING = [...piecesIn(wholePaddingPieces(meta.files, meta.pieceLength, meta.totalLength))];

async function workDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tt-padding-'));
  trackDir(dir);
  return dir;
}

describe('a session and pieces wholly in padding', () => {
  it('a download has them from the start, fetches only the data pieces (their data blocks) from a seed, and completes', async () => {
    expect(PADDING).toHaveLength(64);
    const work = await workDir();
    await mkdir(join(work, 'seed', 'm'), { recursive: true });
    for (const f of FILES) if (!f.pad) await writeFile(join(work, 'seed', 'm', ...f.path), dataOf(f));
    const seed = await startSession({ meta, root: join(work, 'seed'), mode: 'seed' });
    expect(seed.session.have.complete).toBe(true);

    let checkedHave = -1;
    const leech = await startSession(
      { meta, root: join(work, 'out'), mode: 'download', useTrackers: false, peers: [seed.address] },
      (s) => s.on('checked', (have: number) => (checkedHave = have)),
    );
    expect(checkedHave).toBe(PADDING.length);
    await whenComplete(leech.session);
    // the padding never crossed the wire: one block of piece 0 and 10 B of the last piece
    expect(leech.session.stats().downloaded).toBeLessThan(2 * 16 * 1024);
    for (const f of FILES.filter((f) => !f.pad)) expect(await readFile(join(work, 'out', 'm', ...f.path))).toEqual(dataOf(f));
    expect(existsSync(join(work, 'out', 'm', '.pad'))).toBe(false);
  });

  it('without checking the folder (skipCheck), the padding pieces are had at start and nothing else', async () => {
    const work = await workDir();
    const leech = await startSession({ meta, root: join(work, 'out'), mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port: 9 }], skipCheck: true });
    expect([...leech.session.have.indices()]).toEqual(PADDING);
  });

  it('a download that verified no data (only the padding pieces it had from the start) leaves nothing behind, as one without padding', async () => {
    const work = await workDir();
    const out = join(work, 'out');
    const leech = await startSession({ meta, root: out, mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port: 9 }] });
    expect(leech.session.have.count).toBe(PADDING.length);
    expect(existsSync(join(out, 'm', 'a'))).toBe(true); // created at start
    await leech.session.stop();
    // the files and folder it created go, and no resume record vouches for padding
    expect(existsSync(join(out, 'm'))).toBe(false);
    expect((await readdir(out)).filter((n) => n.endsWith('.tt-resume'))).toEqual([]);
  });
});

