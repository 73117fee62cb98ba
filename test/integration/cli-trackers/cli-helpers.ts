/**
 * Helpers for the tracker end-to-end tests of the BUILT cli (bin/tt.js over dist/):
 * build when dist/ is stale, spawn tt with stdout and stderr kept apart (killed by PID
 * through the process registry), torrents of one fixture with any announce-list, and
 * trackers that are dead in the ways real ones are (silent UDP, closed port, refusing).
 */
import { createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode } from '../../../src/metainfo/bencode.js';
import { createTorrent } from '../../../src/metainfo/create.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { startProcess, type ManagedProcess } from '../../helpers/clients/process.js';
import type { Fixture } from '../../helpers/swarm.js';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const TT_BIN = join(ROOT, 'bin/tt.js');
export const LOOPBACK = ['--bind', '127.0.0.1', '--port', '0'] as const;

export { ensureBuilt } from '../../helpers/build.js';

export interface Tt {
  proc: ManagedProcess;
  stdout: () => string;
  stderr: () => string;
  /** Non-empty stderr lines. */
  stderrLines: () => string[];
}

/** Spawn `node bin/tt.js ...args`; registered so killAll() ends it by PID. */
export function tt(args: readonly string[]): Tt {
  const proc = startProcess(`tt ${args[0] ?? ''}`, process.execPath, [TT_BIN, ...args], { cwd: ROOT, env: { ...process.env, TT_DEBUG: '' } });
  let out = '';
  let err = '';
  proc.child.stdout?.on('data', (s: string) => (out += s));
  proc.child.stderr?.on('data', (s: string) => (err += s));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    stderrLines: () => err.split('\n').filter((l) => l.trim() !== ''),
  };
}

export interface TtResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stderrLines: string[];
  ms: number;
}

/** Run tt to its exit within timeoutMs (rejects, with its output, otherwise; afterAll kills it). */
export async function runTt(args: readonly string[], timeoutMs: number): Promise<TtResult> {
  const started = Date.now();
  const t = tt(args);
  const status = await t.proc.waitForExit(timeoutMs);
  return { code: status.code, stdout: t.stdout(), stderr: t.stderr(), stderrLines: t.stderrLines(), ms: Date.now() - started };
}

/** Write `<work>/<label>.torrent`: the fixture's info dict (same info hash) with this announce-list. */
export async function torrentWith(fx: Fixture, label: string, announceList: string[][]): Promise<string> {
  const bytes = createTorrent(fx.meta.name, fx.files, { pieceLength: fx.meta.pieceLength, announceList });
  if (!parseTorrent(bytes).infoHash.equals(fx.meta.infoHash)) throw new Error('re-created torrent has another info hash');
  const path = join(fx.work, `${label}.torrent`);
  await writeFile(path, bytes);
  return path;
}

export type Cleanup = () => Promise<void> | void;

/** A bound UDP socket that never answers: a tracker that is down but not refusing. */
export async function silentUdpTracker(cleanups: Cleanup[]): Promise<string> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    sock.close();
  });
  return `udp://127.0.0.1:${sock.address().port}`;
}

/** A TCP port that was just closed: connecting to it is refused at once. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** An HTTP tracker that answers every request (announce or scrape) with `failure reason`. */
export async function refusingHttpTracker(reason: string, cleanups: Cleanup[]): Promise<{ base: string; requests: () => number }> {
  let requests = 0;
  const body = encode({ 'failure reason': reason });
  const server = createHttpServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

/** Poll until check() is true (every 100 ms, at most timeoutMs). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
