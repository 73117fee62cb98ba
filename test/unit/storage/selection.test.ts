/**
 * Selective download on disk (metainfo/selection.ts, storage/storage.ts, storage/check.ts):
 * - TorrentStorage.open with a selection creates only selected, non-padding files; the part
 *   file `<root>/.<infohash>.tt-parts` appears only when a write needs it;
 * - writing the wanted pieces fills the selected files exactly, keeps unselected files' bytes
 *   of shared pieces in the part file at their torrent offset (and nothing else there), and
 *   readPiece routes through it;
 * - checkExisting with the selection finds exactly the wanted pieces, without it only the
 *   pieces wholly inside selected files; a larger selection on resume counts shared pieces of a
 *   file not created yet (part-file fallback), and open() then copies those edge bytes in;
 * - BEP 47 padding is never created nor written to the part file; padding is not selectable;
 * - a seeded property test: wanted / wantedBytes / edgeRanges against brute force, and the
 *   write-then-check round trip on random layouts;
 * - confinement: the part file is in root, a symlink at its path is refused (DiskError);
 * - a run that dies while a newly selected file adopts its bytes (stalled at each write and
 *   the sync, the disk then read as the next run finds it) loses no verified piece; a
 *   temporary it left is reused, a symlink or hard link there refused, and a torrent with a
 *   file named like one never written; leftover temporaries (this torrent's own names, regular
 *   files only, each in its file's folder, not written for a minute) are deleted by the next
 *   writable open with a selection, also for a file no later run selects.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, lutimes, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, symlink, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskError, TtError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { FileSelection, edgeRanges, parseFileNumbers, selectFiles } from '../../../src/metainfo/selection.js';
import { CHECK_RUN_BYTES, checkExisting } from '../../../src/storage/check.js';
import { ADOPT_TEMP_MIN_AGE_MS, TorrentStorage, adoptTempName, type FileOpener } from '../../../src/storage/storage.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { createTorrent } from '../../../src/metainfo/create.js';
import { mulberry32 } from '../../helpers/prng.js';
import { makeTorrent, withFileIn, withTempDir } from './fixture.js';

function pieceOf(meta: Metainfo, data: Buffer, p: number): Buffer {
  return data.subarray(p * meta.pieceLength, Math.min((p + 1) * meta.pieceLength, meta.totalLength));
}

function bits(b: { size: number; has(i: number): boolean }): string {
  let s = '';
  for (let i = 0; i < b.size; i++) s += b.has(i) ? '1' : '0';
  return s;
}

const selectionOf = (meta: Metainfo, indexes: readonly number[]): FileSelection =>
  new FileSelection(meta, meta.files.map((_, i) => indexes.includes(i)));

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/** Torrent bytes [from, to) of file `i` inside piece `p` (empty when none). */
function overlap(meta: Metainfo, i: number, p: number): [number, number] {
  const f = meta.files[i]!;
  const from = Math.max(f.offset, p * meta.pieceLength);
  const to = Math.min(f.offset + f.length, (p + 1) * meta.pieceLength, meta.totalLength);
  return [from, Math.max(from, to)];
}

/** Pieces having a byte of a selected non-empty file, scanning every (piece, file) pair. */
function bruteWanted(meta: Metainfo, selected: (i: number) => boolean): string {
  let s = '';
  for (let p = 0; p < meta.pieceCount; p++) {
    s += meta.files.some((f, i) => selected(i) && !f.padding && overlap(meta, i, p)[1] > overlap(meta, i, p)[0]) ? '1' : '0';
  }
  return s;
}

/** What the part file must hold: unselected, non-padding files' bytes inside wanted pieces. */
function partRanges(meta: Metainfo, sel: FileSelection): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p < meta.pieceCount; p++) {
    if (!sel.wanted.has(p)) continue;
    meta.files.forEach((f, i) => {
      const [from, to] = overlap(meta, i, p);
      if (!sel.isSelected(i) && !f.padding && to > from) out.push([from, to]);
    });
  }
  return out;
}

async function writeWanted(root: string, meta: Metainfo, data: Buffer, selection: FileSelection): Promise<void> {
  const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection });
  try {
    for (let p = meta.pieceCount - 1; p >= 0; p--) if (selection.wanted.has(p)) await storage.writePiece(p, Buffer.from(pieceOf(meta, data, p)));
  } finally {
    await storage.close();
  }
}

/** Selected files equal the source, unselected ones are absent, the part file holds exactly partRanges (holes elsewhere). */
async function expectOnDisk(root: string, meta: Metainfo, data: Buffer, sel: FileSelection): Promise<void> {
  for (const [i, f] of meta.files.entries()) {
    const p = path.join(root, ...f.path);
    if (!sel.isSelected(i)) expect(await exists(p), p).toBe(false);
    else expect((await readFile(p)).equals(data.subarray(f.offset, f.offset + f.length)), p).toBe(true);
  }
  const ranges = partRanges(meta, sel);
  const partPath = path.join(root, sel.partFileName);
  expect(await exists(partPath)).toBe(ranges.length > 0);
  if (ranges.length === 0) return;
  const expected = Buffer.alloc(Math.max(...ranges.map(([, to]) => to)));
  for (const [from, to] of ranges) data.copy(expected, from, from, to);
  expect((await readFile(partPath)).equals(expected)).toBe(true);
}

// 4 KiB pieces, 11 of them: f0 0-5000 | f1 empty | f2 5000-5003 (3 bytes in piece 1) | f3 5003-14003
// | f4 14003-34003 | f5 34003-34004 | f6 34004-41005. Selecting f1, f2, f4 wants pieces 1 and 3-8;
// pieces 1, 3 and 8 are shared with the unselected f0, f3, f5, f6.
const LENGTHS = [5000, 0, 3, 9000, 20000, 1, 7001];
const PL = 4096;
const SELECTED = [1, 2, 4];
const WANTED = '01011111100';
const INSIDE_SELECTED = '00001111000';

describe('TorrentStorage with a file selection', () => {
  it('open creates only the selected files (the empty one too) and no part file', async () => {
    await withTempDir(async (root) => {
      const { meta } = makeTorrent(LENGTHS, PL);
      const sel = selectionOf(meta, SELECTED);
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: sel });
      expect(await storage.readPiece(1)).toBeUndefined(); // a read does not create the part file
      await storage.close();
      expect(await readdir(root)).toEqual(['T']);
      expect((await readdir(path.join(root, 'T'))).sort()).toEqual(['f1.bin', 'f2.bin', 'f4.bin']);
      for (const i of SELECTED) expect((await stat(path.join(root, ...meta.files[i]!.path))).size).toBe(0);
      const reader = await TorrentStorage.open(root, meta, { mode: 'read', selection: sel });
      expect(await reader.readPiece(1)).toBeUndefined(); // shared bytes: no part file yet (read mode)
      expect(await reader.readPiece(4)).toBeUndefined(); // f4 is empty
      await reader.close();
      expect(await readdir(root)).toEqual(['T']);
    });
  });

  it('writing the wanted pieces fills selected files, puts shared bytes in the part file, and reads them back', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      const sel = selectionOf(meta, SELECTED);
      expect(bits(sel.wanted)).toBe(WANTED);
      expect(sel.wantedBytes).toBe(7 * PL);
      await writeWanted(root, meta, data, sel);
      await expectOnDisk(root, meta, data, sel);
      expect((await readdir(root)).sort()).toEqual([`.${'00'.repeat(20)}.tt-parts`, 'T']); // directly in root
      expect((await stat(path.join(root, sel.partFileName))).size).toBe(36864); // piece 8's end: f6's share
      const reader = await TorrentStorage.open(root, meta, { mode: 'read', selection: sel });
      for (let p = 0; p < meta.pieceCount; p++) {
        if (sel.wanted.has(p)) expect((await reader.readPiece(p))?.equals(pieceOf(meta, data, p)), `piece ${p}`).toBe(true);
      }
      expect(await reader.readPiece(10)).toBeUndefined(); // unwanted, past the part file's end
      await reader.close();
      const plain = await TorrentStorage.open(root, meta, { mode: 'read' }); // no selection: no part file routing
      expect(await plain.readPiece(1)).toBeUndefined();
      expect((await plain.readPiece(5))?.equals(pieceOf(meta, data, 5))).toBe(true);
      await plain.close();
    });
  });

  it('no part file when no wanted piece is shared with an unselected file', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([PL, 2 * PL, 100], PL);
      const sel = selectionOf(meta, [1]);
      await writeWanted(root, meta, data, sel);
      await expectOnDisk(root, meta, data, sel);
      expect(await readdir(root)).toEqual(['T']);
    });
  });
});

describe('unselected files an earlier run created', () => {
  it('a read of the part file pending when the first write comes does not fail the write', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      const sel = selectionOf(meta, SELECTED);
      // piece 1 is shared with unselected files: the read opens the part file (not creating it), the write
      // must create it, however the two interleave
      for (let ticks = 0; ticks < 6; ticks++) {
        const dir = path.join(root, `t${ticks}`);
        const storage = await TorrentStorage.open(dir, meta, { mode: 'readwrite', selection: sel });
        const read = storage.readPiece(1);
        for (let t = 0; t < ticks; t++) await new Promise((r) => setImmediate(r));
        const write = storage.writePiece(1, pieceOf(meta, data, 1));
        // the read sees the piece missing, or (when the write overtook it) the piece itself
        const seen = await read;
        if (seen !== undefined) expect(seen.equals(pieceOf(meta, data, 1))).toBe(true);
        await write;
        expect((await storage.readPiece(1))?.equals(pieceOf(meta, data, 1)), `after ${ticks} ticks`).toBe(true);
        await storage.close();
      }
    });
  });

  it('are read first and kept current: a shared piece verified there survives a new selection without them', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      // everything selected first: every file on disk, no part file
      await writeWanted(root, meta, data, FileSelection.all(meta));
      expect(await exists(path.join(root, `.${'00'.repeat(20)}.tt-parts`))).toBe(false);
      // now only file 4: the pieces it shares with files 3 and 5 verify from those files, not from a part file
      const only4 = selectionOf(meta, [4]);
      const have = await checkExisting(root, meta, { selection: only4, workers: 0 });
      expect(bits(have)).toBe(bits(only4.wanted));
      // a rewrite of a shared piece goes into the existing neighbour and the part file alike
      const shared = [...only4.wanted.indices()][0]!;
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: only4 });
      const neighbour = path.join(root, ...meta.files[3]!.path);
      await truncate(neighbour, 0); // lose file 3's bytes on disk...
      await storage.writePiece(shared, pieceOf(meta, data, shared)); // ...the write puts its share back
      expect((await storage.readPiece(shared))?.equals(pieceOf(meta, data, shared))).toBe(true);
      const [from, to] = overlap(meta, 3, shared);
      const f3 = meta.files[3]!;
      expect((await readFile(neighbour)).subarray(from - f3.offset, to - f3.offset).equals(data.subarray(from, to))).toBe(true);
      expect((await readFile(path.join(root, only4.partFileName))).subarray(from, to).equals(data.subarray(from, to))).toBe(true);
      await storage.close();
    });
  });
});

describe('checking a large torrent with a selection', () => {
  it('runs with nothing wanted take no buffer and read nothing: no stall, only the wanted bytes are read', async () => {
    await withTempDir(async (root) => {
      // 40 MiB unselected then 100 KiB selected, 256 KiB pieces: five 8 MiB check runs wanted nothing
      // (they used to take a hash buffer each and give it back never: the check waited forever on the third)
      const big = 40 * 1024 * 1024 + 1000;
      const { meta, data } = makeTorrent([big, 100_000], 256 * 1024, Buffer.alloc(big + 100_000, 3));
      const sel = selectionOf(meta, [1]);
      const f1 = path.join(root, ...meta.files[1]!.path);
      await mkdir(path.dirname(f1), { recursive: true });
      await writeFile(f1, data.subarray(big));
      // its first piece starts in the unselected file: the part file holds that share
      const first = Math.floor(big / meta.pieceLength);
      await writeFile(path.join(root, sel.partFileName), Buffer.alloc(0));
      await truncate(path.join(root, sel.partFileName), big);
      const have = await checkExisting(root, meta, { selection: sel, workers: 2 });
      // zeros in the part file are not file 0's bytes (3s): the shared piece is missing, the rest present
      expect([...have.indices()]).toEqual([...sel.wanted.indices()].filter((i) => i !== first));
    });
  }, 30_000);
});

describe('a torrent named like a part file', () => {
  it('is never written (it would be another torrent\'s part file); reading it is fine', async () => {
    await withTempDir(async (root) => {
      const meta = parseTorrent(createTorrent(`.${'cd'.repeat(20)}.tt-parts`, Buffer.alloc(100, 1), { pieceLength: PL }));
      expect(meta.multiFile).toBe(false);
      await expect(TorrentStorage.open(root, meta, { mode: 'readwrite' })).rejects.toThrow(/refusing to write/);
      expect(await readdir(root)).toEqual([]);
      await (await TorrentStorage.open(root, meta, { mode: 'read' })).close();
    });
  });
});

describe('checkExisting with a file selection', () => {
  it('finds exactly the wanted pieces; without the selection only pieces wholly inside selected files', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      const sel = selectionOf(meta, SELECTED);
      await writeWanted(root, meta, data, sel);
      expect(bits(await checkExisting(root, meta, { selection: sel }))).toBe(WANTED);
      const inside = bruteWanted(meta, (i) => i === 4); // f4 pieces, minus those another file has bytes in
      expect(INSIDE_SELECTED).toBe([...inside].map((b, p) => (b === '1' && p !== 3 && p !== 8 ? '1' : '0')).join(''));
      expect(bits(await checkExisting(root, meta))).toBe(INSIDE_SELECTED);
      // the part file is really read: a wrong byte in f6's share of piece 8 loses piece 8 only
      const partPath = path.join(root, sel.partFileName);
      const part = await readFile(partPath);
      part[35000] = part[35000]! ^ 0xff;
      await writeFile(partPath, part);
      expect(bits(await checkExisting(root, meta, { selection: sel, workers: 0 }))).toBe('01011111000');
    });
  });

  it('pieces longer than a check run (hashed piece by piece) follow the selection too', async () => {
    await withTempDir(async (root) => {
      const pl = CHECK_RUN_BYTES + 4096; // piece 1: f1's last 10 bytes, then f2
      const { meta, data } = makeTorrent([pl - 10, 20, 2990], pl);
      const sel = selectionOf(meta, [2]);
      await writeWanted(root, meta, data, sel);
      await expectOnDisk(root, meta, data, sel);
      expect(bits(await checkExisting(root, meta, { selection: sel }))).toBe('01');
      expect(bits(await checkExisting(root, meta))).toBe('00');
      await truncate(path.join(root, sel.partFileName), pl + 5); // f1's share cut short
      expect(bits(await checkExisting(root, meta, { selection: sel }))).toBe('00');
    });
  });

  it('unwanted pieces are never reported, even when the part file could verify them', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      const sel = selectionOf(meta, SELECTED);
      await writeWanted(root, meta, data, sel);
      await writeFile(path.join(root, sel.partFileName), data); // every byte, so pieces 0, 2, 9, 10 would verify
      expect(bits(await checkExisting(root, meta, { selection: sel }))).toBe(WANTED);
      const reader = await TorrentStorage.open(root, meta, { mode: 'read', selection: sel });
      for (const p of [1, 3, 8]) expect((await reader.readPiece(p))?.equals(pieceOf(meta, data, p)), `piece ${p}`).toBe(true);
      await reader.close();
    });
  });

  it('resume with more files: shared pieces count via the part file, then open() adopts the edge bytes', async () => {
    await withTempDir(async (root) => {
      // piece 2 (inside f3) is all zeros: while f3 is missing it must be a gap, not a zeroed buffer that verifies
      const { meta, data } = makeTorrent(LENGTHS, PL, randomBytes(41005).fill(0, 2 * PL, 3 * PL));
      await writeWanted(root, meta, data, selectionOf(meta, SELECTED));
      const more = selectionOf(meta, [...SELECTED, 3, 6]); // f3 shares pieces 1 and 3, f6 piece 8
      expect(bits(more.wanted)).toBe('01111111111');
      const f3 = path.join(root, 'T', 'f3.bin');
      const f6 = path.join(root, 'T', 'f6.bin');
      expect(bits(await checkExisting(root, meta, { selection: more }))).toBe(WANTED);
      expect(await exists(f3)).toBe(false); // checking created nothing
      expect(await exists(f6)).toBe(false);
      const partPath = path.join(root, more.partFileName);
      await rename(partPath, `${partPath}.away`); // without the part file those pieces are not there
      expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(INSIDE_SELECTED);
      await rename(`${partPath}.away`, partPath);

      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more });
      for (const p of [1, 3, 8]) expect((await storage.readPiece(p))?.equals(pieceOf(meta, data, p)), `piece ${p}`).toBe(true);
      const f3Bytes = await readFile(f3);
      const [a, b] = [meta.files[3]!.offset, meta.files[3]!.offset + meta.files[3]!.length];
      expect(f3Bytes.length).toBe(b - a);
      expect(f3Bytes.subarray(0, 2 * PL - a).equals(data.subarray(a, 2 * PL))).toBe(true); // piece 1's share
      expect(f3Bytes.subarray(3 * PL - a).equals(data.subarray(3 * PL, b))).toBe(true); // piece 3's share
      const c = meta.files[6]!.offset;
      expect((await readFile(f6)).equals(data.subarray(c, 9 * PL))).toBe(true); // piece 8's share only
      for (const p of [2, 9, 10]) await storage.writePiece(p, Buffer.from(pieceOf(meta, data, p)));
      await storage.close();
      expect(bits(await checkExisting(root, meta, { selection: more }))).toBe('01111111111');
      for (const i of [3, 6]) {
        const f = meta.files[i]!;
        expect((await readFile(path.join(root, ...f.path))).equals(data.subarray(f.offset, f.offset + f.length))).toBe(true);
      }
    });
  });
});

describe('BEP 47 padding with a selection', () => {
  // 4 KiB pieces: f0 0-5000 | pad 5000-5100 | f2 5100-8100 | f3 8100-15100: piece 1 has all four
  function paddedMeta(): { meta: Metainfo; data: Buffer } {
    const raw = randomBytes(15100).fill(0, 5000, 5100);
    const made = makeTorrent([5000, 100, 3000, 7000], PL, raw);
    const files = made.meta.files.map((f, i) => (i === 1 ? { ...f, path: ['T', '.pad', '100'], padding: true } : f));
    return { meta: { ...made.meta, files }, data: made.data };
  }

  it('padding is not numbered nor selectable', () => {
    const { meta } = paddedMeta();
    const sel = selectFiles(meta, parseFileNumbers('2'));
    expect([0, 1, 2, 3].map((i) => sel.isSelected(i))).toEqual([false, false, true, false]);
    expect([sel.selectedCount, sel.fileCount]).toEqual([1, 3]);
    expect(() => selectFiles(meta, parseFileNumbers('4'))).toThrow(TtError);
    const padOnly = new FileSelection(meta, [false, true, false, false]);
    expect([padOnly.isSelected(1), padOnly.selectedCount, padOnly.wanted.count, padOnly.wantedBytes]).toEqual([false, 0, 0, 0]);
  });

  it('is never created nor written to the part file; its bytes read as zeros', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = paddedMeta();
      const sel = selectFiles(meta, parseFileNumbers('2'));
      expect(bits(sel.wanted)).toBe('0100');
      const partPath = path.join(root, sel.partFileName);
      await writeFile(partPath, Buffer.alloc(2 * PL, 0xee)); // bytes nobody should write over
      await writeWanted(root, meta, data, sel);
      expect(await readdir(path.join(root, 'T'))).toEqual(['f2.bin']);
      const part = await readFile(partPath);
      expect(part.subarray(PL, 5000).equals(data.subarray(PL, 5000))).toBe(true); // f0's share
      expect(part.subarray(5000, 8100).equals(Buffer.alloc(3100, 0xee))).toBe(true); // padding and the selected f2: untouched
      expect(part.subarray(8100, 2 * PL).equals(data.subarray(8100, 2 * PL))).toBe(true); // f3's share
      const reader = await TorrentStorage.open(root, meta, { mode: 'read', selection: sel });
      expect((await reader.readPiece(1))?.equals(pieceOf(meta, data, 1))).toBe(true); // zeros, not 0xee
      await reader.close();
      expect(bits(await checkExisting(root, meta, { selection: sel }))).toBe('0100');
    });
  });

  it('every real file selected: the padding alone never makes a part file', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = paddedMeta();
      const sel = selectFiles(meta, parseFileNumbers('1-3'));
      await writeWanted(root, meta, data, sel);
      expect(await readdir(root)).toEqual(['T']);
      expect((await readdir(path.join(root, 'T'))).sort()).toEqual(['f0.bin', 'f2.bin', 'f3.bin']);
      expect(bits(await checkExisting(root, meta, { selection: sel }))).toBe('1111');
    });
  });
});

describe('selection properties on random layouts', () => {
  for (let seed = 1; seed <= 30; seed++) {
    it(`seed ${seed}: wanted, wantedBytes, edgeRanges match brute force; write then check finds exactly wanted`, async () => {
      const rnd = mulberry32(seed);
      const int = (n: number): number => Math.floor(rnd() * n);
      const pl = rnd() < 0.5 ? 16 * 1024 : 32 * 1024;
      const lengths = Array.from({ length: 1 + int(8) }, (): number => {
        const r = rnd();
        return r < 0.15 ? 0 : r < 0.35 ? 1 + int(99) : int(5) * pl + 2 * int(pl / 2) + 1; // odd: never piece-aligned
      });
      if (!lengths.some((l) => l > 0)) lengths[0] = 1;
      const { meta, data } = makeTorrent(lengths, pl);
      const flags = lengths.map(() => rnd() < 0.4);
      if (!flags.some(Boolean)) flags[int(lengths.length)] = true;
      const sel = new FileSelection(meta, flags);

      const expected = bruteWanted(meta, (i) => flags[i]!);
      expect(bits(sel.wanted)).toBe(expected);
      let bytes = 0;
      for (let p = 0; p < meta.pieceCount; p++) if (expected[p] === '1') bytes += pieceOf(meta, data, p).length;
      expect(sel.wantedBytes).toBe(bytes);
      for (const f of meta.files) {
        const pieces = f.length === 0 ? [] : [Math.floor(f.offset / pl), Math.floor((f.offset + f.length - 1) / pl)];
        const brute = [...new Set(pieces)].map((p) => [Math.max(f.offset, p * pl), Math.min(f.offset + f.length, (p + 1) * pl)]);
        expect(edgeRanges(f, pl)).toEqual(brute);
      }

      await withTempDir(async (root) => {
        await writeWanted(root, meta, data, sel);
        await expectOnDisk(root, meta, data, sel);
        expect(bits(await checkExisting(root, meta, { selection: sel, workers: 0 }))).toBe(expected);
      });
    });
  }
});

describe('parseFileNumbers', () => {
  it('parses lists and ranges, refuses what is not one', () => {
    expect(parseFileNumbers('1,3-5, 8 ,2 - 2')).toEqual([[1, 1], [3, 5], [8, 8], [2, 2]]);
    for (const bad of ['', '0', '5-3', 'a', '1,,2', '-1', '1-', '1.5', '1234567890']) expect(() => parseFileNumbers(bad), bad).toThrow(RangeError);
  });
});

describe('part file confinement', () => {
  async function withRootAndOutside(fn: (root: string, outside: string) => Promise<void>): Promise<void> {
    const parent = await mkdtemp(path.join(tmpdir(), 'tt-selection-'));
    try {
      const root = path.join(parent, 'root');
      const outside = path.join(parent, 'outside');
      await mkdir(root);
      await mkdir(outside);
      await fn(root, outside);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  }

  it('lives directly in root, named after the info hash', () => {
    const { meta } = makeTorrent(LENGTHS, PL);
    const named = { ...meta, infoHashHex: 'ab'.repeat(20) };
    expect(selectionOf(named, [0]).partFileName).toBe(`.${'ab'.repeat(20)}.tt-parts`);
  });

  for (const target of ['victim', 'absent'] as const) {
    it(`a symlink planted at its path after open (to an ${target === 'victim' ? 'existing' : 'absent'} outside file) fails the write with DiskError`, async () => {
      await withRootAndOutside(async (root, outside) => {
        const { meta, data } = makeTorrent(LENGTHS, PL);
        const sel = selectionOf(meta, SELECTED);
        await writeFile(path.join(outside, 'victim'), 'do not touch');
        const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: sel });
        await symlink(path.join(outside, target), path.join(root, sel.partFileName));
        const err = await storage.writePiece(1, Buffer.from(pieceOf(meta, data, 1))).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DiskError);
        await storage.writePiece(5, Buffer.from(pieceOf(meta, data, 5))); // a piece inside f4 still writes
        await storage.close();
        expect((await readdir(outside)).sort()).toEqual(['victim']);
        expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('do not touch');
      });
    });
  }

  it('a symlink already at its path: open and checkExisting refuse with DiskError', async () => {
    await withRootAndOutside(async (root, outside) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      const sel = selectionOf(meta, SELECTED);
      const leaked = Buffer.from(data.subarray(0, 36864)); // would verify the shared pieces if it were read
      await writeFile(path.join(outside, 'parts'), leaked);
      await writeWanted(root, meta, data, selectionOf(meta, [4]));
      await rm(path.join(root, sel.partFileName));
      await symlink(path.join(outside, 'parts'), path.join(root, sel.partFileName));
      await expect(TorrentStorage.open(root, meta, { mode: 'readwrite', selection: sel })).rejects.toBeInstanceOf(DiskError);
      await expect(TorrentStorage.open(root, meta, { mode: 'read', selection: sel })).rejects.toBeInstanceOf(DiskError);
      await expect(checkExisting(root, meta, { selection: sel })).rejects.toBeInstanceOf(DiskError);
      expect((await readFile(path.join(outside, 'parts'))).equals(leaked)).toBe(true);
    });
  });
});

describe('a run that dies while a newly selected file adopts its bytes', () => {
  /**
   * An opener whose handles of file 3's new file (its temporary, or the file itself where it
   * is created in place) stall at their `step`-th write or sync (0-based) and every one after,
   * as if the process had died there: what is on disk then is what the next run would find.
   * `release` fails the stalled calls (nothing more is written) so the dead run can end.
   */
  function dyingAt(step: number): { openFile: FileOpener; reached: Promise<void>; release: () => void } {
    let reach!: () => void;
    const reached = new Promise<void>((r) => (reach = r));
    const stalled: (() => void)[] = [];
    let steps = 0;
    const openFile: FileOpener = async (file, flags) => {
      const fh = await open(file, flags, 0o644);
      if ((flags & constants.O_CREAT) === 0 || !/(f3\.bin|\.3\.tt-adopt)$/.test(file)) return fh;
      const stall = (op: () => Promise<unknown>): Promise<unknown> => {
        if (steps++ < step) return op();
        reach();
        return new Promise((_, reject) => stalled.push(() => reject(new Error('the process died here'))));
      };
      return new Proxy(fh, {
        get(target, prop) {
          const value: unknown = Reflect.get(target, prop);
          if (typeof value !== 'function') return value;
          const fn = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
          return prop === 'write' || prop === 'datasync' || prop === 'sync' ? (...a: unknown[]) => stall(() => fn(...a)) : fn;
        },
      }) as FileHandle;
    };
    return { openFile, reached, release: () => stalled.splice(0).forEach((fail) => fail()) };
  }

  // f3 (in T/sub) shares piece 1 with f2 and piece 3 with f4: two ranges copied from the part
  // file (writes 0 and 1), then the sync (step 2)
  for (const step of [0, 1, 2]) {
    it(`dying at ${['the first write', 'the second write', 'the sync before the rename'][step]}: the next run keeps pieces 1 and 3 and builds the file right`, async () => {
      await withTempDir(async (root) => {
        const made = makeTorrent(LENGTHS, PL);
        const meta = withFileIn(made.meta, 3, 'sub');
        const data = made.data;
        await writeWanted(root, meta, data, selectionOf(meta, SELECTED));
        const more = selectionOf(meta, [...SELECTED, 3]);
        const before = bits(await checkExisting(root, meta, { selection: more, workers: 0 }));
        expect(before).toBe(WANTED); // pieces 1 and 3 verified, f3's share of them in the part file

        const death = dyingAt(step);
        const dying = TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more, openFile: death.openFile });
        const ended = dying.then((s) => s.close(), () => undefined);
        await Promise.race([death.reached, ended]);
        const f3 = path.join(root, ...meta.files[3]!.path);
        expect(await exists(f3), 'the file has no name before it holds its bytes').toBe(false);

        // the next run, on the disk as the dead one left it
        expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(before);
        const next = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more });
        for (const p of [1, 3]) expect((await next.readPiece(p))?.equals(pieceOf(meta, data, p)), `piece ${p}`).toBe(true);
        await next.close();
        expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(before);
        const { offset, length } = meta.files[3]!;
        const bytes = await readFile(f3);
        expect(bytes.length).toBe(length);
        expect(bytes.subarray(0, 2 * PL - offset).equals(data.subarray(offset, 2 * PL)), "piece 1's share").toBe(true);
        expect(bytes.subarray(3 * PL - offset).equals(data.subarray(3 * PL, offset + length)), "piece 3's share").toBe(true);
        expect(await readdir(path.dirname(f3))).toEqual(['f3.bin']); // the temporary was reused and renamed

        death.release();
        await ended;
        expect((await readFile(f3)).equals(bytes)).toBe(true);
      });
    });
  }

  it('a temporary left with other bytes in it is truncated and reused; the file gets exactly its own', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      await writeWanted(root, meta, data, selectionOf(meta, SELECTED));
      const more = selectionOf(meta, [...SELECTED, 3]);
      const temp = path.join(root, 'T', adoptTempName(meta, 3));
      await writeFile(temp, Buffer.alloc(3 * PL, 0xee)); // longer than f3, and not its bytes
      expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(WANTED);
      await (await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more })).close();
      const { offset, length } = meta.files[3]!;
      const expected = Buffer.alloc(length); // piece 2 was never downloaded: a hole
      data.copy(expected, 0, offset, 2 * PL);
      data.copy(expected, 3 * PL - offset, 3 * PL, offset + length);
      expect((await readFile(path.join(root, 'T', 'f3.bin'))).equals(expected)).toBe(true);
      expect(await exists(temp)).toBe(false);
      expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(WANTED);
    });
  });

  for (const kind of ['symlink', 'hard link'] as const) {
    it(`a ${kind} at the temporary's path to a file outside is refused (DiskError) and the outside file untouched`, async () => {
      await withTempDir(async (parent) => {
        const root = path.join(parent, 'root');
        const victim = path.join(parent, 'victim');
        const { meta, data } = makeTorrent(LENGTHS, PL);
        await writeWanted(root, meta, data, selectionOf(meta, SELECTED));
        await writeFile(victim, 'do not touch');
        const temp = path.join(root, 'T', adoptTempName(meta, 3));
        await (kind === 'symlink' ? symlink(victim, temp) : link(victim, temp));
        const more = selectionOf(meta, [...SELECTED, 3]);
        await expect(TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more })).rejects.toBeInstanceOf(DiskError);
        expect(await readFile(victim, 'utf8')).toBe('do not touch');
        expect(await exists(path.join(root, 'T', 'f3.bin'))).toBe(false);
        expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(WANTED); // nothing lost either
      });
    });
  }

  it("a temporary left for a file no later run selects is deleted by the next writable open with a selection, and only this torrent's own", async () => {
    await withTempDir(async (parent) => {
      const root = path.join(parent, 'root');
      const made = makeTorrent(LENGTHS, PL);
      const meta = withFileIn(made.meta, 3, 'sub'); // f3 in T/sub, the others in T
      await writeWanted(root, meta, made.data, selectionOf(meta, SELECTED));
      const T = path.join(root, 'T');
      await mkdir(path.join(T, 'sub'));
      const ours = (i: number): string => adoptTempName(meta, i);
      // leftovers of runs that died adopting: f3 and f0 (never selected again), f4 (selected and there now)
      const dead = [path.join(T, 'sub', ours(3)), path.join(T, ours(0)), path.join(T, ours(4))];
      for (const f of dead) await writeFile(f, Buffer.alloc(PL, 0xee));
      // not ours to delete: another torrent's, other names, an index the torrent lacks, f3's name in
      // the wrong folder, a symlink and a hard link to files outside, a folder
      const victim = path.join(parent, 'victim');
      const linked = path.join(parent, 'linked');
      await writeFile(victim, 'do not touch');
      await writeFile(linked, 'do not touch either');
      const keep = [`.${'ab'.repeat(20)}.3.tt-adopt`, `${ours(0)}.bak`, ours(0).slice(1), `.${meta.infoHashHex}.99.tt-adopt`, ours(3), ours(5), ours(6), ours(2)];
      for (const name of keep.slice(0, 5)) await writeFile(path.join(T, name), 'other');
      await symlink(victim, path.join(T, ours(5)));
      await link(linked, path.join(T, ours(6)));
      await mkdir(path.join(T, ours(2)));
      // all of them written long enough ago; one of ours written just now (another tt adopting f1 at
      // this moment) is not a leftover yet
      const old = (Date.now() - ADOPT_TEMP_MIN_AGE_MS - 5_000) / 1000;
      for (const f of [...dead, ...keep.map((name) => path.join(T, name))]) await lutimes(f, old, old);
      await writeFile(path.join(T, ours(1)), 'being written');
      keep.push(ours(1));
      const before = bits(await checkExisting(root, meta, { selection: selectionOf(meta, SELECTED), workers: 0 }));
      expect(before).toBe(WANTED);

      // a read-only open (a seed) changes nothing
      await (await TorrentStorage.open(root, meta, { mode: 'read', selection: selectionOf(meta, SELECTED) })).close();
      for (const f of dead) expect(await exists(f), f).toBe(true);

      await (await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: selectionOf(meta, SELECTED) })).close();
      for (const f of dead) expect(await exists(f), f).toBe(false);
      expect((await readdir(T)).sort()).toEqual([...keep, 'f2.bin', 'f4.bin', 'sub', 'f1.bin'].sort());
      expect(await readdir(path.join(T, 'sub'))).toEqual([]);
      expect(await readFile(victim, 'utf8')).toBe('do not touch');
      expect(await readFile(linked, 'utf8')).toBe('do not touch either');
      // nothing verified was lost: the part file still holds the unselected files' shares
      expect(bits(await checkExisting(root, meta, { selection: selectionOf(meta, SELECTED), workers: 0 }))).toBe(before);
      expect(bits(await checkExisting(root, meta, { selection: selectionOf(meta, [...SELECTED, 3]), workers: 0 }))).toBe(WANTED);
    });
  });

  it('a run that died adopting, then a run that does not select that file: its temporary is gone, and selecting it later still adopts the bytes', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PL);
      await writeWanted(root, meta, data, selectionOf(meta, SELECTED));
      const more = selectionOf(meta, [...SELECTED, 3]);
      const death = dyingAt(2); // the sync before the rename: the temporary holds both ranges
      const dying = TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more, openFile: death.openFile });
      const ended = dying.then((s) => s.close(), () => undefined);
      await death.reached;
      const temp = path.join(root, 'T', adoptTempName(meta, 3));
      expect(await exists(temp)).toBe(true);
      death.release();
      await ended;
      expect(await exists(temp)).toBe(true);

      // the next run, at once: the temporary may be another tt's, adopting now, so it stays
      await (await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: selectionOf(meta, SELECTED) })).close();
      expect(await exists(temp)).toBe(true);
      // a run a while later
      const old = (Date.now() - ADOPT_TEMP_MIN_AGE_MS - 1_000) / 1000;
      await lutimes(temp, old, old);
      await (await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: selectionOf(meta, SELECTED) })).close();
      expect(await exists(temp)).toBe(false);
      expect(await exists(path.join(root, 'T', 'f3.bin'))).toBe(false);
      const next = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: more });
      for (const p of [1, 3]) expect((await next.readPiece(p))?.equals(pieceOf(meta, data, p)), `piece ${p}`).toBe(true);
      await next.close();
      expect(bits(await checkExisting(root, meta, { selection: more, workers: 0 }))).toBe(WANTED);
    });
  });

  it('a torrent with a file named like an adoption temporary is never written; reading it is fine', async () => {
    await withTempDir(async (root) => {
      const made = makeTorrent([10, 20], PL);
      const files = made.meta.files.map((f, i) => (i === 1 ? { ...f, path: ['T', `.${'ab'.repeat(20)}.0.tt-adopt`] } : f));
      const meta = { ...made.meta, files };
      await expect(TorrentStorage.open(root, meta, { mode: 'readwrite' })).rejects.toThrow(/refusing to write .*tt-adopt/);
      expect(await readdir(root)).toEqual([]);
      await (await TorrentStorage.open(root, meta, { mode: 'read' })).close();
    });
  });
});
