/**
 * Builders for loopback swarms in tests: generated multi-file data whose files
 * cross piece boundaries, a torrent of it, and in-process tt sessions bound
 * to 127.0.0.1 on port 0. Everything started here is stopped by `stopAll`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { PeerAddress } from '../../src/core/peer-address.js';
import type { Metainfo } from '../../src/metainfo/metainfo.js';
import { createTorrent } from '../../src/metainfo/create.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { Listener } from '../../src/session/listener.js';
import { TorrentSession, type SessionOptions } from '../../src/session/torrent-session.js';

export interface FileSpec {
  path: string[];
  size: number;
}

/** Odd sizes: pieces cross files, one file is empty, one spans several pieces. */
export const ODD_FILES: FileSpec[] = [
  { path: ['a.txt'], size: 1_000 },
  { path: ['empty.bin'], size: 0 },
  { path: ['sub', 'b.bin'], size: 70_001 },
  { path: ['sub', 'deeper', 'c.bin'], size: 3 * 32_768 + 5 },
  { path: ['z.bin'], size: 300_123 },
];

export interface Fixture {
  work: string;
  meta: Metainfo;
  torrentPath: string;
  torrent: Buffer;
  /** folder holding <name>/... with the complete data */
  seedRoot: string;
  files: { path: string[]; data: Buffer }[];
}

export async function makeFixture(
  opts: {
    name?: string;
    files?: FileSpec[];
    pieceLength?: number;
    announce?: string;
    urlList?: string[];
    /** one file, single-file layout */
    single?: boolean;
    /** BEP 27: `private: 1` in the info dictionary */
    private?: boolean;
  } = {},
): Promise<Fixture> {
  const work = await mkdtemp(join(tmpdir(), 'tt-test-'));
  const name = opts.name ?? 'payload';
  const files = (opts.files ?? ODD_FILES).map((f) => ({ path: f.path, data: randomBytes(f.size) }));
  if (opts.single && files.length !== 1) throw new Error('a single-file torrent has one file');
  const torrent = createTorrent(name, opts.single ? files[0]!.data : files, {
    pieceLength: opts.pieceLength ?? 32_768,
    ...(opts.announce ? { announce: opts.announce } : {}),
    ...(opts.urlList ? { urlList: opts.urlList } : {}),
    ...(opts.private ? { private: true } : {}),
  });
  const meta = parseTorrent(torrent);
  const seedRoot = join(work, 'seed');
  for (const f of files) {
    const path = meta.multiFile ? join(seedRoot, name, ...f.path) : join(seedRoot, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, f.data);
  }
  const torrentPath = join(work, `${name}.torrent`);
  await writeFile(torrentPath, torrent);
  return { work, meta, torrentPath, torrent, seedRoot, files };
}

/** Every file under `root` equals the fixture's data. */
export async function expectSameData(fx: Fixture, root: string): Promise<void> {
  for (const f of fx.files) {
    const path = fx.meta.multiFile ? join(root, fx.meta.name, ...f.path) : join(root, fx.meta.name);
    const got = await readFile(path);
    if (!got.equals(f.data)) {
      throw new Error(`${f.path.join('/')} differs: ${sha1(got)} != ${sha1(f.data)} (${got.length} vs ${f.data.length} bytes)`);
    }
  }
}

export function sha1(b: Buffer): string {
  return createHash('sha1').update(b).digest('hex');
}

export interface Running {
  session: TorrentSession;
  listener: Listener;
  address: PeerAddress;
}

const running: Running[] = [];
const dirs: string[] = [];

export async function startSession(
  opts: Omit<SessionOptions, 'listener'>,
  beforeStart?: (session: TorrentSession) => void,
  listenerOpts: { requireEncryption?: boolean } = {},
): Promise<Running> {
  const listener = await Listener.listen({ host: '127.0.0.1', port: 0, ...listenerOpts });
  const session = new TorrentSession({ ...opts, listener });
  const r = { session, listener, address: { host: '127.0.0.1', port: listener.port } };
  running.push(r);
  beforeStart?.(session);
  await session.start();
  return r;
}

/** The whole torrent's bytes, the files concatenated in torrent order (to answer requests from a raw peer). */
export async function torrentBytes(fx: Fixture): Promise<Buffer> {
  return Buffer.concat(await Promise.all(fx.meta.files.map((f) => readFile(join(fx.seedRoot, ...f.path)))));
}

/** A downloading session into `root` that talks only to the given 127.0.0.1 ports (no trackers). */
export function startLeech(meta: Metainfo, root: string, ports: number[], beforeStart?: (session: TorrentSession) => void): Promise<Running> {
  return startSession({ meta, root, mode: 'download', useTrackers: false, peers: ports.map((port) => ({ host: '127.0.0.1', port })) }, beforeStart);
}

export function trackDir(dir: string): void {
  dirs.push(dir);
}

export async function stopAll(): Promise<void> {
  for (const r of running.splice(0)) {
    await r.session.stop();
    await r.listener.close();
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

/** Resolves on the session's 'complete', rejects on 'error' or after timeoutMs. */
export function whenComplete(session: TorrentSession, timeoutMs = 30_000): Promise<void> {
  if (session.done) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not complete after ${timeoutMs} ms: ${JSON.stringify(session.stats())}`)), timeoutMs);
    session.once('complete', () => {
      clearTimeout(timer);
      session.flush().then(resolve, reject);
    });
    session.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
