/**
 * `tt download --select` against a real libtorrent seeder (BEP 3 over TCP, 127.0.0.1 only, no
 * tracker): a torrent made by libtorrent whose file boundaries fall inside pieces. Downloading
 * only the third file fetches only the pieces that overlap it, creates no other file, and keeps
 * the neighbours' bytes of the shared pieces in `.<infohash>.tt-parts`; a second run into the same
 * folder selecting everything fetches only the rest. Bad selections are usage errors (exit 2,
 * one `tt: ` line, nothing created) and need no real client.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decode, isBytes, isDict, isInt, isList } from '../../src/metainfo/bencode.js';
import { assertSameTree, listTree, sha1File } from '../helpers/clients/data.js';
import { ltCreate, startLtSeeder, type LtSeeder } from '../helpers/clients/libtorrent.js';
import { killAll, startProcess, type JsonEvent, type ManagedProcess } from '../helpers/clients/process.js';
import { TT_BIN } from '../helpers/clients/tt.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt } from '../integration/cli/tt-cli.js';

const PIECE_LENGTH = 32 * 1024;
/** File lengths in the torrent's order: every boundary falls inside a piece; one empty file. */
const SIZES = [100_001, 0, 70_003, 300_000, 33] as const;
/** The file run 1 asks for, numbered as `tt info` lists them (1-based). */
const SELECTED = 3;
const DOWNLOAD_TIMEOUT_MS = 60_000;

interface LayoutFile {
  /** Relative to the download folder: [name, ...path] joined. */
  rel: string;
  length: number;
  offset: number;
}

interface Layout {
  files: LayoutFile[];
  pieceLength: number;
  totalLength: number;
  pieceCount: number;
}

/** The v1 file list of a .torrent in its own order, read straight from the bencode (not through tt's parser). */
async function readLayout(torrent: string): Promise<Layout> {
  const root = decode(await readFile(torrent));
  const info = isDict(root) ? root.get('info') : undefined;
  if (!isDict(info)) throw new Error(`${torrent}: no info dictionary`);
  const name = info.get('name');
  const pieceLength = info.get('piece length');
  const list = info.get('files');
  if (!isBytes(name) || !isInt(pieceLength) || !isList(list)) throw new Error(`${torrent}: not a v1 multi-file torrent`);
  const files: LayoutFile[] = [];
  let offset = 0;
  for (const entry of list) {
    const length = isDict(entry) ? entry.get('length') : undefined;
    const path = isDict(entry) ? entry.get('path') : undefined;
    const attr = isDict(entry) ? entry.get('attr') : undefined;
    if (!isInt(length) || !isList(path)) throw new Error(`${torrent}: bad files entry`);
    if (isBytes(attr) && attr.toString().includes('p')) throw new Error(`${torrent}: unexpected padding file`);
    const parts = path.map((p) => (isBytes(p) ? p.toString('utf8') : '?'));
    files.push({ rel: join(name.toString('utf8'), ...parts), length, offset });
    offset += length;
  }
  return { files, pieceLength, totalLength: offset, pieceCount: Math.ceil(offset / pieceLength) };
}

/**
 * seedDir/multi with SIZES in libtorrent's file order, and a torrent of it made by libtorrent.
 * libtorrent lists a folder in directory order (by name hash on ext4), so: ask it for the
 * order once, then rewrite the same names in place (the order does not change) with the lengths.
 */
async function writeArrangedTorrent(dir: string, seedDir: string, torrent: string): Promise<{ source: string; infoHash: string; layout: Layout }> {
  const source = join(seedDir, 'multi');
  await mkdir(source, { recursive: true });
  for (const name of ['f-a.bin', 'f-b.bin', 'f-c.bin', 'f-d.bin', 'f-e.bin']) await writeFile(join(source, name), Buffer.from([0x5a]));
  const probe = join(dir, 'order.torrent');
  await ltCreate(source, probe, { pieceLength: PIECE_LENGTH });
  const order = (await readLayout(probe)).files.map((f) => f.rel);
  expect(order).toHaveLength(SIZES.length);
  for (const [k, rel] of order.entries()) await writeFile(join(seedDir, rel), randomBytes(SIZES[k]!));
  const infoHash = await ltCreate(source, torrent, { pieceLength: PIECE_LENGTH });
  const layout = await readLayout(torrent);
  expect(layout.files.map((f) => f.rel), 'libtorrent kept its file order').toEqual(order);
  expect(layout.files.map((f) => f.length)).toEqual([...SIZES]);
  return { source, infoHash, layout };
}

/** Pieces overlapping file f (none for an empty file). */
function piecesOf(f: LayoutFile, pieceLength: number): number[] {
  if (f.length === 0) return [];
  const first = Math.floor(f.offset / pieceLength);
  const last = Math.floor((f.offset + f.length - 1) / pieceLength);
  return Array.from({ length: last - first + 1 }, (_, k) => first + k);
}

function startTtSelect(torrent: string, out: string, select: string, peerPort: number): ManagedProcess {
  return startProcess('tt download --select', process.execPath, [
    TT_BIN, 'download', torrent, '--out', out, '--select', select,
    '--no-trackers', '--peer', `127.0.0.1:${peerPort}`, '--bind', '127.0.0.1', '--port', '0', '--json',
  ]);
}

function eventNamed(p: ManagedProcess, name: string): JsonEvent {
  const found = p.events.filter((e) => e['event'] === name);
  if (found.length !== 1) throw p.failure(`expected one "${name}" event, saw ${found.length}`);
  return found[0]!;
}

describe('tt download --select from a libtorrent seeder (torrent made by libtorrent)', () => {
  let dir: string;
  let torrent: string;
  let source: string;
  let infoHash: string;
  let layout: Layout;
  let seeder: LtSeeder;
  let out: string;
  /** The selected file, and the pieces run 1 needs: every piece overlapping it. */
  let selected: LayoutFile;
  let wanted1: number[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tt-interop-select-'));
    const seedDir = join(dir, 'seed');
    torrent = join(dir, 'multi.torrent');
    ({ source, infoHash, layout } = await writeArrangedTorrent(dir, seedDir, torrent));
    selected = layout.files[SELECTED - 1]!;
    wanted1 = piecesOf(selected, layout.pieceLength);
    out = join(dir, 'out');
    seeder = await startLtSeeder({ torrent, dataDir: seedDir });
  }, 120_000);

  afterAll(async () => {
    await killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the layout makes the selected file share its first and last piece, and tt info numbers it 3', async () => {
    expect(layout.pieceLength).toBe(PIECE_LENGTH);
    expect(selected.length).toBe(SIZES[SELECTED - 1]);
    // both ends inside a piece, and a non-empty neighbour on each side in those pieces
    expect(selected.offset % PIECE_LENGTH).not.toBe(0);
    expect((selected.offset + selected.length) % PIECE_LENGTH).not.toBe(0);
    const others = layout.files.filter((f) => f !== selected);
    expect(others.some((f) => piecesOf(f, PIECE_LENGTH).includes(wanted1[0]!))).toBe(true);
    expect(others.some((f) => piecesOf(f, PIECE_LENGTH).includes(wanted1[wanted1.length - 1]!))).toBe(true);
    expect(wanted1.length).toBeLessThan(layout.pieceCount);

    const info = await runTt(['info', torrent, '--json']);
    expect(info.exit?.code, info.describe()).toBe(0);
    const doc = JSON.parse(info.stdout) as { files: { number: number | null; path: string[]; length: number }[] };
    const third = doc.files.find((f) => f.number === SELECTED);
    expect(third && join(...third.path)).toBe(selected.rel);
  });

  it('--select 3: only the pieces of file 3 are fetched, no other file is created, shared bytes go to the part file', async () => {
    const tt = startTtSelect(torrent, out, String(SELECTED), seeder.port);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);

    expect(await sha1File(join(out, selected.rel))).toBe(await sha1File(join(dir, 'seed', selected.rel)));
    const partName = `.${infoHash}.tt-parts`;
    const tree = await listTree(out);
    // no other torrent file, not even the empty one: only the selected file, the part file, and the
    // resume record (the torrent as a whole is incomplete, so a later run need not hash this again)
    expect([...tree.keys()].sort()).toEqual([selected.rel, partName, `.${infoHash}.tt-resume`].sort());
    expect(tree.get(selected.rel)).toBe(selected.length);

    const done = eventNamed(tt, 'done');
    expect(done['complete'], tt.output()).toBe(true);
    expect(done['selectedFiles']).toBe(1);
    expect(done['wantedPieces']).toBe(wanted1.length);
    const downloaded = Number(done['downloaded']);
    expect(downloaded).toBeGreaterThanOrEqual(selected.length);
    expect(downloaded, tt.output()).toBeLessThanOrEqual(wanted1.length * layout.pieceLength);
    expect(downloaded).toBeLessThan(layout.totalLength);

    // the neighbours' bytes of the two shared pieces are kept (wherever the part file puts them)
    const whole = Buffer.concat(await Promise.all(layout.files.map((f) => readFile(join(dir, 'seed', f.rel)))));
    const end = selected.offset + selected.length;
    const before = whole.subarray(wanted1[0]! * PIECE_LENGTH, selected.offset);
    const after = whole.subarray(end, Math.min((wanted1[wanted1.length - 1]! + 1) * PIECE_LENGTH, layout.totalLength));
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    const part = await readFile(join(out, partName));
    expect(part.indexOf(before), 'bytes before the selected file in its first piece').toBeGreaterThanOrEqual(0);
    expect(part.indexOf(after), 'bytes after the selected file in its last piece').toBeGreaterThanOrEqual(0);
  }, DOWNLOAD_TIMEOUT_MS + 30_000);

  it('then --select 1-5 into the same folder: the pieces of run 1 count as present and are not fetched again', async () => {
    expect(existsSync(join(out, selected.rel)), 'run 1 left the selected file').toBe(true);
    const tt = startTtSelect(torrent, out, `1-${SIZES.length}`, seeder.port);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);

    const checked = eventNamed(tt, 'checked');
    expect(checked['pieceCount']).toBe(layout.pieceCount);
    // the shared pieces verify too: the neighbours' bytes come from the part file
    expect(Number(checked['have']), tt.output()).toBeGreaterThanOrEqual(wanted1.length);

    const done = eventNamed(tt, 'done');
    expect(done['complete'], tt.output()).toBe(true);
    expect(done['selectedFiles']).toBe(SIZES.length);
    expect(done['wantedPieces']).toBe(layout.pieceCount);
    expect(done['have']).toBe(layout.pieceCount);
    const downloaded = Number(done['downloaded']);
    expect(downloaded).toBeGreaterThan(0);
    expect(downloaded, tt.output()).toBeLessThanOrEqual((layout.pieceCount - wanted1.length) * layout.pieceLength);

    // every file, the empty one too, byte-identical; nothing else under the torrent's folder
    await assertSameTree(source, join(out, 'multi'), { strict: true });
  }, DOWNLOAD_TIMEOUT_MS + 30_000);
});

describe('tt download --select: bad selections are usage errors', () => {
  let dir: string;
  let torrent: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tt-interop-select-usage-'));
    const src = join(dir, 'multi');
    await mkdir(src);
    for (const [k, size] of SIZES.entries()) await writeFile(join(src, `file-${k + 1}.bin`), randomBytes(size));
    torrent = join(dir, 'multi.torrent');
    const made = await runTt(['create', src, '--out', torrent, '--piece-length', String(PIECE_LENGTH), '--no-date', '--json']);
    expect(made.exit?.code, made.describe()).toBe(0);
  });

  afterEach(async () => {
    await killAllTt();
  });

  afterAll(async () => {
    await killAllTt();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // USAGE is exit code 2 (src/core/errors.ts EXIT_CODES); commander's invalid-argument errors map to it too (src/cli/main.ts)
  const cases: [string, RegExp][] = [
    ['0', /start at 1/],
    ['9', /no file 9\b.*\b5 files\b/],
    ['4-6', /no file 6\b.*\b5 files\b/],
    ['3-1', /'3-1' is an empty range/],
    ['abc', /'abc' is not a file number/],
  ];

  for (const [select, message] of cases) {
    it(`--select ${select}: exit 2, one "tt: " line, nothing created`, async () => {
      const out = join(dir, `out-${select}`);
      // a peer that listens nowhere and a 1 s peer timeout: a selection wrongly accepted ends fast with another code
      const p = await runTt([
        'download', torrent, '--out', out, '--select', select,
        '--no-trackers', '--peer', '127.0.0.1:1', '--peer-timeout', '1', ...LOOPBACK, '--json',
      ]);
      expect(p.exit?.code, p.describe()).toBe(2);
      expectOneErrorLine(p, message);
      expect(p.stdout, p.describe()).toBe('');
      expect(existsSync(out), 'no download folder').toBe(false);
    });
  }
});
