/**
 * tt against Transmission 3.00 (transmission-cli) on 127.0.0.1, BEP 3 over plain TCP:
 * tt downloads from a Transmission seeder, and a Transmission leecher downloads from `tt seed`.
 * Transmission ignores 127.x peers from trackers and keeps one connection per IP, so tt always
 * dials Transmission (--peer) and the torrent has no tracker at all.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MULTI_FILE_LAYOUT, assertSameTree, writeMultiFileData } from '../helpers/clients/data.js';
import { ltCreate } from '../helpers/clients/libtorrent.js';
import { freePort, killAll, startProcess, type JsonEvent, type ManagedProcess } from '../helpers/clients/process.js';
import { startTransmission } from '../helpers/clients/transmission.js';
import { TT_BIN, TT_START_TIMEOUT_MS } from '../helpers/clients/tt.js';

const PIECE_LENGTH = 32 * 1024;
/** File ends fall inside pieces; one empty file (Transmission does not create those). */
const LAYOUT = MULTI_FILE_LAYOUT;
const TOTAL_LENGTH = Object.values(LAYOUT).reduce((a, b) => a + b, 0);
const PIECE_COUNT = Math.ceil(TOTAL_LENGTH / PIECE_LENGTH);
/** Transmission hashing ~400 KiB of existing data before it says "Seeding". */
const TRANSMISSION_VERIFY_TIMEOUT_MS = 20_000;
/** Transmission's rechoke timer (~10 s) may hold back the first block; the rest is fast. */
const TRANSFER_TIMEOUT_MS = 40_000;
const TEST_TIMEOUT_MS = 60_000;
const PEER_LOG_LINES = 30;

let dir: string;
let seedDir: string;
let source: string;
/** No announce URL: peers come only from --peer (Transmission would drop 127.x tracker peers). */
let torrent: string;

beforeAll(async () => {
  if (!existsSync(new URL('../../dist/tt.mjs', import.meta.url))) throw new Error('build tt first: npm run build');
  dir = await mkdtemp(join(tmpdir(), 'tt-interop-transmission-'));
  seedDir = join(dir, 'seed');
  source = await writeMultiFileData(seedDir, 'multi', LAYOUT);
  torrent = join(dir, 'multi.torrent');
  await ltCreate(source, torrent, { pieceLength: PIECE_LENGTH });
});

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  await killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** tt's --verbose peer lines (connect, close with reason) and warnings: progress events push them out of the ring. */
function peerLog(tt: ManagedProcess): string {
  const lines = tt.events.filter((e) => e['event'] === 'info' || e['event'] === 'warning').map((e) => String(e['message']));
  return lines.slice(-PEER_LOG_LINES).join('\n  ');
}

/** Rethrow with tt's peer log attached. */
async function withPeerLog<T>(tt: ManagedProcess, run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- tt peer log ---\n  ${peerLog(tt)}`);
  }
}

function isNumberEvent(e: JsonEvent, name: string, field: string, atLeast: number): boolean {
  return e['event'] === name && typeof e[field] === 'number' && e[field] >= atLeast;
}

describe('tt <-> Transmission 3.00 on loopback', () => {
  it('tt downloads a multi-file torrent from a Transmission seeder (tt dials it)', async () => {
    const port = await freePort();
    const tr = await startTransmission({ torrent, dir: seedDir, port });
    await tr.waitSeeding(TRANSMISSION_VERIFY_TIMEOUT_MS);

    const out = await mkdtemp(join(dir, 'out-tt-'));
    const started = Date.now();
    // --json --verbose: a failure message then shows every peer connect/close with its reason
    const tt = startProcess('tt download', process.execPath, [
      TT_BIN, 'download', torrent, '--out', out, '--bind', '127.0.0.1', '--port', '0',
      '--peer', `127.0.0.1:${port}`, '--no-trackers', '--json', '--verbose',
    ]);
    await withPeerLog(tt, tt.expectSuccess(TRANSFER_TIMEOUT_MS));
    const seconds = (Date.now() - started) / 1000;

    await assertSameTree(source, join(out, 'multi'), { strict: true });
    expect(tt.events.some((e) => e['event'] === 'complete')).toBe(true);
    const done = tt.events.find((e) => e['event'] === 'done');
    expect(done, tt.output()).toBeDefined();
    console.log(`tt downloaded ${TOTAL_LENGTH} bytes from Transmission in ${seconds.toFixed(1)} s`);
  }, TEST_TIMEOUT_MS);

  it('tt downloads from a Transmission seeder that requires encryption (tt redials with MSE, RC4 stream)', async () => {
    const port = await freePort();
    const tr = await startTransmission({ torrent, dir: seedDir, port, encryptionRequired: true });
    await tr.waitSeeding(TRANSMISSION_VERIFY_TIMEOUT_MS);
    const out = await mkdtemp(join(dir, 'out-tt-encrypted-'));
    const tt = startProcess('tt download', process.execPath, [
      TT_BIN, 'download', torrent, '--out', out, '--bind', '127.0.0.1', '--port', '0',
      '--peer', `127.0.0.1:${port}`, '--no-trackers', '--json', '--verbose',
    ]);
    await withPeerLog(tt, tt.expectSuccess(TRANSFER_TIMEOUT_MS));
    await assertSameTree(source, join(out, 'multi'), { strict: true });
    // Transmission required it, so the data came over the RC4 stream
    const connected = tt.events.filter((e) => e['event'] === 'info' && String(e['message']).includes(': connected')).map((e) => String(e['message']));
    expect(connected, tt.output()).toContain(`peer 127.0.0.1:${port}: connected (encrypted, RC4)`);
  }, TEST_TIMEOUT_MS);

  it('a Transmission leecher downloads everything from `tt seed --peer` (tt dials it)', async () => {
    const out = await mkdtemp(join(dir, 'out-transmission-'));
    const port = await freePort();
    const tr = await startTransmission({ torrent, dir: out, port });

    const started = Date.now();
    const tt = startProcess('tt seed', process.execPath, [
      TT_BIN, 'seed', torrent, '--dir', seedDir, '--bind', '127.0.0.1', '--port', '0',
      '--peer', `127.0.0.1:${port}`, '--json', '--verbose',
    ]);
    const checked = await tt.waitForEventNamed('checked', TT_START_TIMEOUT_MS);
    expect(checked['have']).toBe(PIECE_COUNT);
    expect(checked['pieceCount']).toBe(PIECE_COUNT);

    try {
      await tr.waitSeeding(TRANSFER_TIMEOUT_MS);
    } catch {
      // tt's side (peer connect/close reasons) says more than Transmission's repeated status line
      const lastLine = tr.proc.output().split(/[\r\n]+/).filter(Boolean).pop() ?? '';
      throw new Error(
        `Transmission did not complete within ${TRANSFER_TIMEOUT_MS} ms; its status: ${lastLine.trim()}\n--- tt peer log ---\n  ${peerLog(tt)}`,
      );
    }
    const seconds = (Date.now() - started) / 1000;

    // Transmission 3.00 does not create zero-length files
    await assertSameTree(source, join(out, 'multi'), { allowMissingEmpty: true });
    // Transmission had no other source: tt's own counter must show the whole torrent sent
    await tt.waitForEvent((e) => isNumberEvent(e, 'progress', 'uploaded', TOTAL_LENGTH), 5_000, 'progress with uploaded >= size');
    const status = await tt.kill();
    expect(status.signal).not.toBe('SIGKILL');
    console.log(`Transmission downloaded ${TOTAL_LENGTH} bytes from tt in ${seconds.toFixed(1)} s`);
  }, TEST_TIMEOUT_MS);
});
