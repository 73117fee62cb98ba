/**
 * Hostile and careless uses of `--select` (FileSelection + the part file
 * in `<out>`, named by partFileName()): a folder, symlink, dangling symlink or FIFO
 * where the part file goes; an immutable part file (chattr +i: needs root, as
 * the disk-fault tests); a full disk while writing it; Ctrl-C mid-download,
 * then another selection, then none (no verified piece lost, none fetched
 * twice); BEP 47 padding next to the selected file; a 0-byte file at a piece
 * boundary with no source at all; `tt seed --partial` on a selective folder;
 * a 100,000-file torrent with --select 1 (web seed, time and memory); and a
 * torrent named like another's part file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { encode } from '../../../src/metainfo/bencode.js';
import { createTorrent } from '../../../src/metainfo/create.js';
import { pieceHash, type Metainfo } from '../../../src/metainfo/metainfo.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { FileSelection, parseFileNumbers, partFileName, selectFiles } from '../../../src/metainfo/selection.js';
import { makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from '../cli/tt-cli.js';

const PIECE = 32_768;
const servers: Server[] = [];
const immutable: string[] = [];
afterEach(async () => {
  await killAllTt();
  for (const f of immutable.splice(0)) execFileSync('chattr', ['-i', f]);
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  await stopAll();
});

/** a (pieces 0-1), b (1-3), c (3-4): piece 1 shared by a and b, piece 3 by b and c. */
async function abc(): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['a.bin'], size: 50_000 }, { path: ['b.bin'], size: 50_000 }, { path: ['c.bin'], size: 50_000 }], pieceLength: PIECE });
  trackDir(fx.work);
  return fx;
}
const pick = (meta: Metainfo, numbers: string): FileSelection => selectFiles(meta, parseFileNumbers(numbers));
const partOf = (meta: Metainfo, out: string): string => join(out, partFileName(meta));
const escaped = (meta: Metainfo): string => partFileName(meta).replace(/\./g, '\\.');

/** Pieces that hash right from what is on disk: each file's own bytes, else its bytes in the part file (README's layout). */
async function verifiedOnDisk(meta: Metainfo, out: string): Promise<number[]> {
  const part = await readFile(partOf(meta, out)).catch(() => Buffer.alloc(0));
  const whole = Buffer.alloc(meta.totalLength);
  const present = Buffer.alloc(meta.totalLength);
  for (const f of meta.files) {
    const src = (await readFile(join(out, ...f.path)).catch(() => undefined)) ?? part.subarray(f.offset, f.offset + f.length);
    const n = Math.min(src.length, f.length);
    src.copy(whole, f.offset, 0, n);
    present.fill(1, f.offset, f.offset + n);
  }
  const good: number[] = [];
  for (let i = 0; i < meta.pieceCount; i++) {
    const [s, e] = [i * meta.pieceLength, Math.min((i + 1) * meta.pieceLength, meta.totalLength)];
    if (!present.subarray(s, e).includes(0) && createHash('sha1').update(whole.subarray(s, e)).digest().equals(pieceHash(meta, i))) good.push(i);
  }
  return good;
}

describe('the part file path, hostile', () => {
  it.each(['folder', 'symlink', 'dangling symlink', 'fifo'] as const)('a %s where the part file goes: refused at start, nothing followed or opened', async (kind) => {
    const fx = await abc();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    await mkdir(out);
    const part = partOf(fx.meta, out);
    const victim = join(fx.work, 'victim');
    await writeFile(victim, 'precious');
    if (kind === 'folder') await mkdir(part);
    if (kind === 'symlink') await symlink(victim, part);
    if (kind === 'dangling symlink') await symlink(join(fx.work, 'nothing'), part);
    if (kind === 'fifo') execFileSync('mkfifo', [part]);
    const start = startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection: pick(fx.meta, '1') });
    await expect(start).rejects.toThrow(kind === 'folder' || kind === 'fifo' ? /not a regular file/ : /is a symbolic link/);
    expect(await readFile(victim, 'utf8')).toBe('precious');
    expect(existsSync(join(fx.work, 'nothing'))).toBe(false);
    expect(await readdir(out)).toEqual([partFileName(fx.meta)]);
  });

  it('the CLI: a folder there is exit 6, one line naming it', async () => {
    const fx = await abc();
    const out = join(fx.work, 'out');
    await mkdir(partOf(fx.meta, out), { recursive: true });
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', '127.0.0.1:9', '--json', '--select', '2']);
    expect(p.exit?.code, p.describe()).toBe(6);
    expectOneErrorLine(p, new RegExp(`${escaped(fx.meta)}.*not a regular file`));
  });

  it('an immutable part file: a disk error naming it, verified pieces kept; once writable, the rest only', async () => {
    const fx = await abc();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    await mkdir(out);
    const part = partOf(fx.meta, out);
    await writeFile(part, '');
    try {
      execFileSync('chattr', ['+i', part], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`chattr +i is not permitted here (needs root and ext2/3/4): ${(err as Error).message}`);
    }
    immutable.push(part);
    const first = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection: pick(fx.meta, '1') });
    await expect(whenComplete(first.session, 10_000)).rejects.toThrow(new RegExp(`${escaped(fx.meta)}.*(EPERM|EACCES)`));
    await first.session.stop();
    expect(first.session.have.has(1)).toBe(false); // the shared piece needs the part file
    // what it counted is on disk (a write that ends during stop() is on disk, not counted: never the reverse)
    const kept = await verifiedOnDisk(fx.meta, out);
    expect(kept).toEqual(expect.arrayContaining([...first.session.have.indices()]));
    execFileSync('chattr', ['-i', part]);
    immutable.pop();
    const again = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection: pick(fx.meta, '1') });
    await whenComplete(again.session, 10_000);
    expect(again.session.stats().downloaded).toBe((2 - kept.length) * PIECE);
    expect(await verifiedOnDisk(fx.meta, out)).toEqual([0, 1]);
  });

  it('a full disk while writing the part file: a disk error, verified pieces kept, a later run fetches only the rest', async () => {
    const fx = await abc();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    // the part file is /dev/full (ENOSPC), opened late so that piece 0 (a.bin only) is written first
    const full = async (file: string, flags: number) =>
      file.endsWith(partFileName(fx.meta)) ? new Promise<Awaited<ReturnType<typeof open>>>((r) => setTimeout(() => r(open('/dev/full', 'r+')), 300)) : open(file, flags, 0o644);
    const first = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection: pick(fx.meta, '2'), openFile: full });
    await expect(whenComplete(first.session, 10_000)).rejects.toThrow(/disk full|ENOSPC/);
    await first.session.stop();
    const had = [...first.session.have.indices()];
    expect(had).not.toContain(1); // b's pieces shared with a and c need the part file
    expect(had).not.toContain(3);
    const kept = await verifiedOnDisk(fx.meta, out);
    expect(kept).toEqual(expect.arrayContaining(had));
    expect(kept).not.toContain(1);
    const again = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection: pick(fx.meta, '2') });
    await whenComplete(again.session, 10_000);
    expect(again.session.stats().downloaded).toBe((3 - kept.length) * PIECE);
    expect(await verifiedOnDisk(fx.meta, out)).toEqual(expect.arrayContaining([1, 2, 3]));
  });
});

describe('selections that change, padding, empty files', () => {
  it('Ctrl-C mid-download, then another selection, then none: no verified piece lost, none fetched twice', async () => {
    const fx = await makeFixture({ files: [{ path: ['a.bin'], size: 100_001 }, { path: ['b.bin'], size: 400_003 }, { path: ['c.bin'], size: 200_005 }], pieceLength: PIECE });
    trackDir(fx.work);
    const slow = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 150_000 });
    const fast = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const args = ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--json'];
    const first = startTt([...args, '--peer', `127.0.0.1:${slow.address.port}`, '--select', '2']);
    await first.waitForEvent('progress', 20_000, (e) => (e.wantedHave as number) >= 4);
    first.signal('SIGINT');
    expect((await first.waitForExit()).code, first.describe()).toBe(130);
    const v1 = await verifiedOnDisk(fx.meta, out);
    expect(v1.length).toBeGreaterThanOrEqual(4);
    expect(v1.length).toBeLessThan(pick(fx.meta, '2').wanted.count);
    const second = await runTt([...args, '--peer', `127.0.0.1:${fast.address.port}`, '--select', '3']);
    expect(second.exit?.code, second.describe()).toBe(0);
    const v2 = await verifiedOnDisk(fx.meta, out);
    expect(v2).toEqual(expect.arrayContaining(v1)); // b's pieces survive a selection without b
    const third = await runTt([...args, '--peer', `127.0.0.1:${fast.address.port}`]);
    expect(third.exit?.code, third.describe()).toBe(0);
    expect(third.events.find((e) => e.event === 'checked')?.have).toBe(v2.length);
    const size = (i: number): number => Math.min(PIECE, fx.meta.totalLength - i * PIECE);
    const rest = [...Array(fx.meta.pieceCount).keys()].filter((i) => !v2.includes(i)).reduce((n, i) => n + size(i), 0);
    expect(third.events.find((e) => e.event === 'done')?.downloaded).toBe(rest);
    for (const [k, f] of fx.files.entries()) expect((await readFile(join(out, ...fx.meta.files[k]!.path))).equals(f.data)).toBe(true);
    expect(existsSync(partOf(fx.meta, out))).toBe(false);
  });

  it('BEP 47: the file next to padding alone: no part file, no padding file on disk, numbering skips padding', async () => {
    // a | pad to 64 KiB | b | pad to 128 KiB | c: no piece is shared by two real files
    const sizes = [40_000, 65_536 - 40_000, 50_000, 131_072 - 115_536, 5_000];
    const data = sizes.map((n, i) => (i % 2 ? Buffer.alloc(n) : Buffer.alloc(n, 0x30 + i)));
    const all = Buffer.concat(data);
    const pieces = Buffer.concat([...Array(Math.ceil(all.length / PIECE)).keys()].map((i) => createHash('sha1').update(all.subarray(i * PIECE, (i + 1) * PIECE)).digest()));
    const files = sizes.map((length, i) => (i % 2 ? { attr: 'p', length, path: ['.pad', String(length)] } : { length, path: [`f${i}.bin`] }));
    const meta = parseTorrent(encode({ info: { files, name: 'padded', 'piece length': PIECE, pieces } }));
    const fx = await makeFixture({ files: [{ path: ['x'], size: 1 }] });
    trackDir(fx.work);
    for (const [i, f] of meta.files.entries()) if (!f.padding) await mkdir(join(fx.work, 'seed', 'padded'), { recursive: true }).then(() => writeFile(join(fx.work, 'seed', ...f.path), data[i]!));
    const seed = await startSession({ meta, root: join(fx.work, 'seed'), mode: 'seed' });
    const selection = pick(meta, '2'); // f2.bin: numbers 1, 2, 3 are f0, f2, f4
    expect(selection.isSelected(2)).toBe(true);
    expect([...selection.wanted.indices()]).toEqual([2, 3]);
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection });
    await whenComplete(leech.session, 10_000);
    await leech.session.stop();
    // the torrent is incomplete, so the download keeps a resume record; no part file, no padding file
    expect((await readdir(out)).sort()).toEqual([`.${meta.infoHashHex}.tt-resume`, 'padded']);
    expect(await readdir(join(out, 'padded'))).toEqual(['f2.bin']);
    expect((await readFile(join(out, 'padded', 'f2.bin'))).equals(data[2]!)).toBe(true);
    expect(leech.session.stats().downloaded).toBe(2 * PIECE);
  });

  it('only a 0-byte file at a piece boundary, with no tracker and no peer: done at once, nothing else written', async () => {
    const fx = await makeFixture({ files: [{ path: ['a.bin'], size: PIECE }, { path: ['empty'], size: 0 }, { path: ['b.bin'], size: PIECE }], pieceLength: PIECE });
    trackDir(fx.work);
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--json', '--select', '2'], 10_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.events.find((e) => e.event === 'done')).toMatchObject({ complete: true, downloaded: 0, wantedPieces: 0 });
    expect(await readdir(out)).toEqual(['payload']);
    expect(await readdir(join(out, 'payload'))).toEqual(['empty']);
  });

  // was a bug: the part file was read in download mode only, so a seed did not count (nor could serve) the
  // shared pieces whose other share is in it; a seed now reads the folder as "every file selected" too
  it('tt seed --partial after a selective download serves every piece it verified, the shared ones too', async () => {
    const fx = await makeFixture({ pieceLength: PIECE }); // ODD_FILES: c.bin (4) shares pieces 2 and 5
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const selection = pick(fx.meta, '4');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection });
    await whenComplete(leech.session, 10_000);
    await leech.session.stop();
    const partial = await startSession({ meta: fx.meta, root: out, mode: 'seed', allowPartial: true });
    expect([...partial.session.have.indices()]).toEqual([...selection.wanted.indices()]);
  });
});

describe('scale and collisions', () => {
  it('100,000 files, --select 1 from a web seed: only piece 0 is fetched, one file created, time and memory bounded', async () => {
    const N = 100_000;
    const body = (i: number): Buffer => Buffer.from(`file ${i} `.padEnd(100, '.'));
    const files = Array.from({ length: N }, (_, i) => ({ path: [`d${i % 100}`, `f${i}.bin`], data: body(i) }));
    const asked = new Set<number>();
    const server = createServer((req, res) => {
      const i = Number(/\/f(\d+)\.bin$/.exec(req.url ?? '')?.[1]);
      asked.add(i);
      const [a, b] = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')!.slice(1).map(Number) as [number, number];
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/100`, 'content-length': b - a + 1 }).end(body(i).subarray(a, b + 1));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const meta = parseTorrent(createTorrent('many', files, { pieceLength: 256 * 1024, urlList: [url] }));
    const fx = await makeFixture({ files: [{ path: ['x'], size: 1 }] });
    trackDir(fx.work);
    const out = join(fx.work, 'out');
    const rss0 = process.memoryUsage().rss;
    const t0 = Date.now();
    const leech = await startSession({ meta, root: out, mode: 'download', useTrackers: false, selection: pick(meta, '1') });
    const started = Date.now() - t0;
    await whenComplete(leech.session, 60_000);
    const took = Date.now() - t0;
    console.log(`100k files, --select 1: session start ${started} ms, done after ${took} ms, rss +${Math.round((process.memoryUsage().rss - rss0) / 2 ** 20)} MiB`);
    expect(took).toBeLessThan(90_000);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(512 * 2 ** 20);
    const inPiece0 = Math.ceil(meta.pieceLength / 100);
    expect(asked.size).toBe(inPiece0); // the files sharing piece 0, nothing else
    expect(Math.max(...asked)).toBe(inPiece0 - 1);
    expect(await readdir(join(out, 'many'))).toEqual(['d0']);
    expect(await readdir(join(out, 'many', 'd0'))).toEqual(['f0.bin']);
  }, 120_000);

  it("a torrent named like another torrent's part file is refused before anything is written; the other's part file is left alone", async () => {
    const fx = await makeFixture({ pieceLength: PIECE }); // ODD_FILES, 5 files
    trackDir(fx.work);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const out = join(fx.work, 'out');
    const b = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address], selection: pick(fx.meta, '4') });
    await whenComplete(b.session, 10_000);
    await b.session.stop();
    const part = await readFile(partOf(fx.meta, out));
    // a (crafted) single-file torrent whose name is B's part file: downloading it into the same folder
    // would make it B's part file (written into by B's next selective run, deleted by B's complete one)
    const name = partFileName(fx.meta);
    const aData = Buffer.alloc(500_000, 0x41);
    const aMeta = parseTorrent(createTorrent(name, aData, { pieceLength: PIECE }));
    await mkdir(join(fx.work, 'a-seed'));
    await writeFile(join(fx.work, 'a-seed', name), aData);
    const aSeed = await startSession({ meta: aMeta, root: join(fx.work, 'a-seed'), mode: 'seed' });
    await expect(startSession({ meta: aMeta, root: out, mode: 'download', useTrackers: false, peers: [aSeed.address] })).rejects.toThrow(/refusing/);
    expect((await readFile(partOf(fx.meta, out))).equals(part)).toBe(true);
  });
});
