/**
 * Review of fast resume (storage/resume.ts) against a crafted record, a
 * crafted folder and a file selection: a record is taken only when it is
 * well-formed, for this torrent and this folder's very files; nothing
 * outside the folder is written; and a piece whose bytes are not where
 * storage reads them is never vouched for.
 */
import { chmod, chown, copyFile, link, mkdir, open, readFile, readdir, rmdir, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { DiskError } from '../../../src/core/errors.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import { partFileName, selectFiles } from '../../../src/metainfo/selection.js';
import { checkExisting } from '../../../src/storage/check.js';
import { expectedStamps, filesTouched, loadResume, resumeFileName, saveResume, stampFolder } from '../../../src/storage/resume.js';
import { TorrentStorage } from '../../../src/storage/storage.js';
import { bitfieldOf, bits, makePaddedTorrent, makeTorrent, withTempDir, writeAll } from './fixture.js';

const PIECE = 1024;
/** Pieces [0, 3) are file 0, [3, 5) file 1, [5, 8) file 2; pieces 2 and 4 straddle two files. */
const LENGTHS = [2.5 * PIECE, 2 * PIECE, 3.5 * PIECE - 100];


/** The record as saveResume wrote it, to be tampered with. */
async function savedRecord(root: string, meta: Metainfo): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(root, resumeFileName(meta)), 'utf8')) as Record<string, unknown>;
}

async function writeRecord(root: string, meta: Metainfo, text: string): Promise<void> {
  await writeFile(path.join(root, resumeFileName(meta)), text);
}

describe('a crafted record is not a record', () => {
  it('numbers as strings, stamps as numbers, extra or missing files, prototype keys: all ignored, none throws', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
      const good = await savedRecord(root, meta);
      const files = good['files'] as unknown[][];
      const variants: Record<string, unknown>[] = [
        { ...good, pieceCount: String(meta.pieceCount) },
        { ...good, version: '1' },
        { ...good, pieceCount: meta.pieceCount + 0.5 },
        { ...good, files: files.map((s) => s.map(Number)) },
        { ...good, files: [...files, null] },
        { ...good, files: files.slice(1) },
        { ...good, files: files.map((s) => [...s, '1']) },
        { ...good, files: files.map((s) => s.map((x) => `-${String(x)}`)) },
        { ...good, files: files.map((s) => s.map((x) => `${String(x)}.0`)) },
        { ...good, infoHash: 'ab'.repeat(20) },
        { ...good, have: 'not base64!' },
        { ...good, have: { length: 1 } },
      ];
      for (const v of variants) {
        await writeRecord(root, meta, JSON.stringify(v));
        expect(await loadResume(root, meta, partFileName(meta)), JSON.stringify(v).slice(0, 120)).toBeUndefined();
      }
      // a record nested under __proto__ (or with every field there) is not its own fields
      const raw = JSON.stringify(good);
      for (const text of [`{"__proto__":${raw}}`, `{"constructor":{"prototype":${raw}}}`, `[${raw}]`, `"${raw.replace(/"/g, '\\"')}"`]) {
        await writeRecord(root, meta, text);
        expect(await loadResume(root, meta, partFileName(meta)), text.slice(0, 40)).toBeUndefined();
        expect(({} as Record<string, unknown>)['have']).toBeUndefined(); // nothing polluted
      }
      // deep nesting up to the size bound, and a record past the bound
      const depth = 4000;
      await writeRecord(root, meta, '['.repeat(depth) + ']'.repeat(depth));
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
      await writeRecord(root, meta, raw.replace('{', `{"pad":"${'x'.repeat(64 * 1024)}",`));
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
      // and the genuine one is still taken
      await writeRecord(root, meta, raw);
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11111111');
    });
  });

  it('a duplicated key: the last one wins, as JSON.parse reads it, so a record cannot say two things', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, bitfieldOf('10000000'), partFileName(meta));
      const raw = JSON.stringify(await savedRecord(root, meta));
      await writeRecord(root, meta, raw.replace(/}$/, `,"infoHash":"${'ee'.repeat(20)}"}`));
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
    });
  });
});

describe('a record from elsewhere', () => {
  it("another folder's record, copied with the files and their times (cp -p): nothing vouched for", async () => {
    await withTempDir(async (work) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const a = path.join(work, 'a');
      const b = path.join(work, 'b');
      await writeAll(a, meta, data);
      await saveResume(a, meta, bitfieldOf('11111111'), partFileName(meta));
      await writeAll(b, meta, Buffer.alloc(data.length, 0x55)); // wrong bytes, same sizes
      for (const f of meta.files) {
        const st = await stat(path.join(a, ...f.path));
        await utimes(path.join(b, ...f.path), st.atime, st.mtime);
      }
      await copyFile(path.join(a, resumeFileName(meta)), path.join(b, resumeFileName(meta)));
      expect(bits(await loadResume(b, meta, partFileName(meta)))).toBe('00000000');
    });
  });

  it("another torrent's record renamed to this torrent's name: ignored", async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const other: Metainfo = { ...meta, infoHash: Buffer.alloc(20, 1), infoHashHex: '01'.repeat(20) };
      await writeAll(root, meta, data);
      await saveResume(root, other, bitfieldOf('11111111'), partFileName(other));
      await copyFile(path.join(root, resumeFileName(other)), path.join(root, resumeFileName(meta)));
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
    });
  });
});

describe('a record planted by someone else (a folder others can write to, such as /tmp)', () => {
  /** A record vouching for every piece of files with the wrong bytes, their stamps copied into it: a forgery. */
  async function forge(root: string, meta: Metainfo, dataLength: number): Promise<string> {
    await writeAll(root, meta, Buffer.alloc(dataLength, 0x45)); // 'EEEE...': not the torrent's bytes
    await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta)); // stamps as they stand
    return path.join(root, resumeFileName(meta));
  }

  it.skipIf(process.getuid?.() !== 0)("one owned by another user is not read, stamps or not (here: nobody's)", async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const record = await forge(root, meta, data.length);
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11111111'); // ours: taken
      await chown(record, 65534, 65534);
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
    });
  });

  it('one that others (group or anyone) may write is not read', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const record = await forge(root, meta, data.length);
      for (const mode of [0o666, 0o664, 0o646]) {
        await chmod(record, mode);
        expect(await loadResume(root, meta, partFileName(meta)), mode.toString(8)).toBeUndefined();
      }
      await chmod(record, 0o644);
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11111111');
    });
  });

  it('a record never vouches for bytes past the end of a file as it is now, even with its stamps matching', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      // file 2 (pieces 5-7) cut to 1.5 pieces, then a record written with stamps of the files as they stand
      await truncate(path.join(root, ...meta.files[2]!.path), 1.5 * PIECE);
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta));
      // piece 5 is wholly inside what is left, 6 is cut short, 7 is gone
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11111100');
    });
  });

  it('a folder or FIFO under the record\'s name is no record: everything is hashed, nothing refused', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await mkdir(path.join(root, resumeFileName(meta)));
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
      await rmdir(path.join(root, resumeFileName(meta)));
      execFileSync('mkfifo', [path.join(root, resumeFileName(meta))]);
      expect(await loadResume(root, meta, partFileName(meta))).toBeUndefined();
    });
  });
});

describe("the record's own files", () => {
  it('a temporary left by a killed run (garbage, a folder, a FIFO) never hangs or breaks loading; saving replaces or refuses it', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, bitfieldOf('11000000'), partFileName(meta));
      const tmp = path.join(root, `${resumeFileName(meta)}.tmp`);
      await writeFile(tmp, '{"format":"tt-resume", half a record');
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11000000');
      await saveResume(root, meta, bitfieldOf('11100000'), partFileName(meta));
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11100000');
      await mkdir(tmp);
      await expect(saveResume(root, meta, bitfieldOf('11110000'), partFileName(meta))).rejects.toBeInstanceOf(DiskError);
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11100000'); // the last good record stands
      await (await import('node:fs/promises')).rmdir(tmp);
      execFileSync('mkfifo', [tmp]);
      const saved = saveResume(root, meta, bitfieldOf('11110000'), partFileName(meta));
      const outcome = await Promise.race([saved.then(() => 'saved', () => 'refused'), new Promise((r) => setTimeout(() => r('hung'), 3_000))]);
      expect(outcome).toBe('refused');
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('11100000');
    });
  });

  it('a temporary that is a hard link to a file outside the folder: that file is not written', async () => {
    await withTempDir(async (work) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const root = path.join(work, 'out');
      await writeAll(root, meta, data);
      const outside = path.join(work, 'precious.txt');
      await writeFile(outside, 'not yours to write\n');
      await link(outside, path.join(root, `${resumeFileName(meta)}.tmp`));
      await saveResume(root, meta, bitfieldOf('11111111'), partFileName(meta)).catch(() => undefined); // refusing is fine
      expect(await readFile(outside, 'utf8')).toBe('not yours to write\n');
    });
  });
});

describe('files with nothing to read', () => {
  it('zero-length and padding files: their pieces stand whether or not the empty files are there', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent([PIECE + 10, 0, 2 * PIECE, 0], PIECE);
      await writeAll(root, meta, data);
      await saveResume(root, meta, Bitfield.full(meta.pieceCount), partFileName(meta));
      await unlink(path.join(root, ...meta.files[1]!.path));
      expect(bits(await loadResume(root, meta, partFileName(meta)))).toBe('1111');
      const padded = makePaddedTorrent([1500, 3000, 700], PIECE);
      await withTempDir(async (r2) => {
        await writeAll(r2, padded.meta, padded.data);
        await saveResume(r2, padded.meta, Bitfield.full(padded.meta.pieceCount), partFileName(padded.meta));
        // a padding file planted on disk is not read: the pieces stay, and hash as zeros there
        const pad = padded.meta.files.find((f) => f.padding)!;
        await mkdir(path.join(r2, ...pad.path.slice(0, -1)), { recursive: true });
        await writeFile(path.join(r2, ...pad.path), Buffer.alloc(pad.length, 0xff));
        const known = await loadResume(r2, padded.meta, partFileName(padded.meta));
        expect(known?.count).toBe(padded.meta.pieceCount);
        const storage = await TorrentStorage.open(r2, padded.meta, { mode: 'read' });
        try {
          for (let i = 0; i < padded.meta.pieceCount; i++) {
            const piece = await storage.readPiece(i);
            const want = padded.data.subarray(i * PIECE, Math.min((i + 1) * PIECE, padded.meta.totalLength));
            expect(piece?.equals(want), `piece ${i}`).toBe(true);
          }
        } finally {
          await storage.close();
        }
      });
    });
  });
});

describe('a file selection', () => {
  it('a selected file deleted while the download ran (the part file there for another file): its pieces are not vouched for', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const selection = selectFiles(meta, [[1, 1], [3, 3]]); // files 0 and 2 (numbered from 1); file 1's edges in the part file
      const found = await stampFolder(root, meta, selection.partFileName); // as the session takes it at start
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection });
      const have = new Bitfield(meta.pieceCount);
      for (const i of selection.wanted.indices()) {
        await storage.writePiece(i, data.subarray(i * PIECE, Math.min((i + 1) * PIECE, meta.totalLength)));
        have.set(i);
      }
      // the user deletes file 2 while tt still runs; then tt stops (session #saveResume: sync, then save)
      await unlink(path.join(root, ...meta.files[2]!.path));
      await storage.sync();
      await storage.flushStamps();
      await saveResume(root, meta, have, selection.partFileName, expectedStamps(found, storage.stamps(), meta.files.length));
      await storage.close();

      const known = await loadResume(root, meta, selection.partFileName);
      const checked = await checkExisting(root, meta, { selection, known, workers: 0 });
      // pieces 5..7 lie wholly in file 2 (piece 4 partly): none of their bytes exist anywhere now
      expect(bits(checked)).toBe('11100000');
    });
  });

  it('a file changed by someone else after tt last wrote it, during the run: its pieces are not vouched for at stop', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const found = await stampFolder(root, meta, '.none.tt-parts');
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite' });
      const have = new Bitfield(meta.pieceCount);
      for (let i = 0; i < meta.pieceCount; i++) {
        await storage.writePiece(i, data.subarray(i * PIECE, Math.min((i + 1) * PIECE, meta.totalLength)));
        have.set(i);
      }
      // tt's stamps are taken a moment after its writes (Storage #stampSoon); then, later,
      // another program rewrites a byte of file 0 (same size), and tt goes on writing nothing there
      await new Promise((r) => setTimeout(r, 100));
      const f0 = path.join(root, ...meta.files[0]!.path);
      const fh = await open(f0, 'r+');
      await fh.write(Buffer.from([0x00]), 0, 1, 5);
      await fh.close();
      await storage.sync();
      await storage.flushStamps();
      await saveResume(root, meta, have, '.none.tt-parts', expectedStamps(found, storage.stamps(), meta.files.length));
      await storage.close();
      const known = await loadResume(root, meta, '.none.tt-parts');
      const touchesFile0 = [...filesTouched(meta, [0])].length > 0;
      expect(touchesFile0).toBe(true);
      // file 0's pieces (and the one it shares with file 1) are left for hashing; the rest vouched for
      for (let i = 0; i < meta.pieceCount; i++) expect(known?.has(i), `piece ${i}`).toBe(!filesTouched(meta, [i]).has(0));
    });
  });

  it('changing the selection between runs: a file adopted from the part file since the record loses its pieces, then hashes', async () => {
    await withTempDir(async (root) => {
      const { meta, data } = makeTorrent(LENGTHS, PIECE);
      const first = selectFiles(meta, [[1, 1]]); // file 0 only: piece 2 shares file 1's edge, kept in the part file
      const storage = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: first });
      const have = new Bitfield(meta.pieceCount);
      for (const i of first.wanted.indices()) {
        await storage.writePiece(i, data.subarray(i * PIECE, (i + 1) * PIECE));
        have.set(i);
      }
      await storage.sync();
      await saveResume(root, meta, have, first.partFileName);
      await storage.close();
      expect(bits(await loadResume(root, meta, first.partFileName))).toBe('11100000');
      // the next run selects everything: file 1 is adopted from the part file at open
      const all = selectFiles(meta, [[1, 3]]);
      const second = await TorrentStorage.open(root, meta, { mode: 'readwrite', selection: all });
      await second.close();
      const known = await loadResume(root, meta, all.partFileName);
      expect(bits(known)).toBe('11000000'); // piece 2 touches file 1, which exists now
      expect(bits(await checkExisting(root, meta, { selection: all, known, workers: 0 }))).toBe('11100000');
      expect((await readdir(root)).filter((n) => n.endsWith('.tt-adopt'))).toEqual([]);
    });
  });
});
