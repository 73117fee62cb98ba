/**
 * libtorrent 2.0 (python3-libtorrent) for interop tests, through test/helpers/lt.py:
 * create and hash torrents, run a loopback-only seeder or leecher (BEP 3 over TCP), or a peer
 * that downloads nothing and reports whom it is connected to (optionally with BEP 11 ut_pex).
 * lt.py must run under Debian's /usr/bin/python3: a pyenv python3 cannot import libtorrent.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startProcess, type ManagedProcess } from './process.js';

const execFileAsync = promisify(execFile);

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const LT_PY = fileURLToPath(new URL('../lt.py', import.meta.url));
export const LT_START_TIMEOUT_MS = 15_000;
/** Hash-checking the seeder's data; generous for large bench data on a slow disk. */
export const LT_CHECK_TIMEOUT_MS = 120_000;

async function runLt(args: readonly string[], timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const { stdout } = await execFileAsync(SYSTEM_PYTHON, [LT_PY, ...args], { timeout: timeoutMs, maxBuffer: 1 << 20 });
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}

/** libtorrent's v1 info hash (hex) of a .torrent file; rejects if libtorrent refuses the file. */
export async function ltInfoHash(torrentPath: string): Promise<string> {
  const out = await runLt(['infohash', torrentPath]);
  const hash = out['infoHash'];
  if (typeof hash !== 'string' || !/^[0-9a-f]{40}$/.test(hash)) throw new Error(`lt.py infohash: unexpected output ${JSON.stringify(out)}`);
  return hash;
}

export interface LtCreateOptions {
  pieceLength?: number;
  trackers?: readonly string[];
  /** v1+v2 with BEP 47 padding files (libtorrent's and qBittorrent's default) instead of v1 only. */
  hybrid?: boolean;
}

/** Create a torrent (v1-only unless `hybrid`) of a file or folder with libtorrent; returns its info hash (hex). */
export async function ltCreate(path: string, outTorrent: string, opts: LtCreateOptions = {}): Promise<string> {
  const args = ['create', path, outTorrent];
  if (opts.pieceLength !== undefined) args.push('--piece-length', String(opts.pieceLength));
  for (const t of opts.trackers ?? []) args.push('--tracker', t);
  if (opts.hybrid) args.push('--hybrid');
  const out = await runLt(args, 300_000);
  return String(out['infoHash']);
}

export interface LtSeedOptions {
  torrent: string;
  /** The folder that holds the torrent's name (file or folder). */
  dataDir: string;
  port?: number;
  /** Bytes per second; applied to local peers too. */
  uploadLimit?: number;
  /** Serve a copy with one flipped byte in every piece (never becomes a verified seed). */
  corrupt?: boolean;
  /** Peers to connect to (Transmission only accepts incoming on loopback). */
  peers?: readonly string[];
  /** Serve the info dictionary to magnet users (BEP 9 ut_metadata). */
  metadata?: boolean;
  /** Encrypted connections only, RC4 stream ("require encryption"). */
  requireRc4?: boolean;
  /** Turn the DHT on with only these loopback nodes to start from ("127.0.0.1:port"). */
  dhtBootstrap?: readonly string[];
  /** Stay connected to upload-only peers (a startLtJoin peer) instead of closing as redundant. */
  keepRedundant?: boolean;
}

export interface LtSeeder {
  proc: ManagedProcess;
  port: number;
  stop(): Promise<void>;
}

/** Start a libtorrent seeder and wait until it listens and has verified its data. */
export async function startLtSeeder(opts: LtSeedOptions): Promise<LtSeeder> {
  const args = [LT_PY, 'seed', opts.torrent, opts.dataDir, '--port', String(opts.port ?? 0)];
  if (opts.uploadLimit !== undefined) args.push('--upload-limit', String(opts.uploadLimit));
  if (opts.corrupt) args.push('--corrupt');
  if (opts.metadata) args.push('--metadata');
  if (opts.requireRc4) args.push('--require-rc4');
  if (opts.keepRedundant) args.push('--keep-redundant');
  for (const p of opts.peers ?? []) args.push('--peer', p);
  for (const n of opts.dhtBootstrap ?? []) args.push('--dht-bootstrap', n);
  const proc = startProcess('libtorrent seeder', SYSTEM_PYTHON, args);
  try {
    const listening = await proc.waitForEventNamed('listening', LT_START_TIMEOUT_MS);
    await proc.waitForEventNamed('seeding', LT_CHECK_TIMEOUT_MS);
    return { proc, port: Number(listening['port']), stop: async () => void (await proc.kill()) };
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

export interface LtLeechOptions {
  /** A .torrent file, or a magnet link (libtorrent then fetches the metadata with ut_metadata). */
  torrent: string;
  outDir: string;
  port?: number;
  peers?: readonly string[];
  timeoutS?: number;
  /** Encrypted connections only, RC4 stream ("require encryption"). */
  requireRc4?: boolean;
  /** Turn the DHT on with only these loopback nodes to start from ("127.0.0.1:port"). */
  dhtBootstrap?: readonly string[];
}

/** Start a libtorrent leecher; it prints {"event":"done","seconds":S} and exits 0 when complete. */
export function startLtLeecher(opts: LtLeechOptions): ManagedProcess {
  const args = [LT_PY, 'leech', opts.torrent, opts.outDir, '--port', String(opts.port ?? 0)];
  for (const p of opts.peers ?? []) args.push('--peer', p);
  args.push('--timeout', String(opts.timeoutS ?? 120));
  if (opts.requireRc4) args.push('--require-rc4');
  for (const n of opts.dhtBootstrap ?? []) args.push('--dht-bootstrap', n);
  return startProcess('libtorrent leecher', SYSTEM_PYTHON, args);
}

export interface LtJoinOptions {
  /** A .torrent file, or a magnet link: then it joins by info hash and never gets the metadata (no ut_metadata). */
  torrent: string;
  /** Save path; nothing is written there (upload mode). */
  outDir: string;
  port?: number;
  peers?: readonly string[];
  /** Exchange peers (BEP 11 ut_pex); every other lt.py session runs without it. */
  pex?: boolean;
  /** Seconds between "peers" events (lt.py's default 0.5). */
  reportIntervalS?: number;
}

export interface LtJoined {
  proc: ManagedProcess;
  port: number;
}

/**
 * Start a libtorrent peer that joins the swarm with no data and downloads nothing (upload mode;
 * from a magnet link, without ever having the metadata);
 * it prints {"event":"peers","peers":["ip:port",...],"fromPex":[...],"pieces":N,"downloaded":B,
 * "uploaded":B} periodically (connected peers: an outgoing connection shows the listening port).
 * Upload-only: a libtorrent seeder keeps it only with `keepRedundant`. Resolves once it listens.
 */
export async function startLtJoin(opts: LtJoinOptions): Promise<LtJoined> {
  const args = [LT_PY, 'join', opts.torrent, opts.outDir, '--port', String(opts.port ?? 0)];
  for (const p of opts.peers ?? []) args.push('--peer', p);
  if (opts.pex) args.push('--pex');
  if (opts.reportIntervalS !== undefined) args.push('--report-interval', String(opts.reportIntervalS));
  const proc = startProcess('libtorrent peer', SYSTEM_PYTHON, args);
  try {
    const listening = await proc.waitForEventNamed('listening', LT_START_TIMEOUT_MS);
    return { proc, port: Number(listening['port']) };
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

export interface LtDhtNode {
  proc: ManagedProcess;
  /** UDP port of its DHT node. */
  port: number;
}

/** A libtorrent session that is only a DHT node (no torrents), on 127.0.0.1, bootstrapping from nothing. */
export async function startLtDhtNode(): Promise<LtDhtNode> {
  const proc = startProcess('libtorrent DHT node', SYSTEM_PYTHON, [LT_PY, 'dht-node', '--port', '0']);
  try {
    const listening = await proc.waitForEventNamed('listening', LT_START_TIMEOUT_MS);
    return { proc, port: Number(listening['dhtPort'] ?? listening['port']) };
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

/** Download with libtorrent to completion; resolves with libtorrent's own seconds. */
export async function ltDownload(opts: LtLeechOptions): Promise<number> {
  const proc = startLtLeecher(opts);
  const timeoutMs = (opts.timeoutS ?? 120) * 1000 + 15_000;
  await proc.expectSuccess(timeoutMs);
  const done = proc.events.find((e) => e['event'] === 'done');
  if (!done) throw proc.failure('exited 0 without a "done" event');
  return Number(done['seconds']);
}
