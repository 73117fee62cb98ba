/**
 * tt itself as a child process for interop tests, through its public CLI (bin/tt.js over
 * dist/): `tt download` to completion and `tt seed --json` with its listening/checked events.
 * Always bound to 127.0.0.1 with port 0. Needs a build first (scripts/test.sh does it).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startProcess, type ManagedProcess } from './process.js';

export const TT_BIN = fileURLToPath(new URL('../../../bin/tt.js', import.meta.url));
const TT_DIST_MAIN = fileURLToPath(new URL('../../../dist/tt.mjs', import.meta.url));
export const TT_START_TIMEOUT_MS = 15_000;
export const TT_CHECK_TIMEOUT_MS = 120_000;

function ttArgs(args: readonly string[]): string[] {
  if (!existsSync(TT_DIST_MAIN)) throw new Error(`${TT_DIST_MAIN} is missing: build tt first (npm run build)`);
  return [TT_BIN, ...args];
}

export interface TtDownloadOptions {
  torrent: string;
  outDir: string;
  maxPeers?: number;
  extraArgs?: readonly string[];
}

/** `tt download <torrent> --out DIR --port 0 --quiet`; exits 0 only when every piece verified. */
export function startTtDownload(opts: TtDownloadOptions): ManagedProcess {
  const args = ['download', opts.torrent, '--out', opts.outDir, '--port', '0', '--bind', '127.0.0.1', '--quiet'];
  if (opts.maxPeers !== undefined) args.push('--max-peers', String(opts.maxPeers));
  args.push(...(opts.extraArgs ?? []));
  return startProcess('tt download', process.execPath, ttArgs(args));
}

export interface TtSeeder {
  proc: ManagedProcess;
  port: number;
  /** The {"event":"checked"} event: have and pieceCount. */
  checked: Record<string, unknown>;
  stop(): Promise<void>;
}

/** `tt seed <torrent> --dir DIR --port 0 --json [extra]`; resolves once it listens and has checked its data. */
export async function startTtSeeder(torrent: string, dataDir: string, extra: readonly string[] = []): Promise<TtSeeder> {
  const proc = startProcess(
    'tt seed',
    process.execPath,
    ttArgs(['seed', torrent, '--dir', dataDir, '--port', '0', '--bind', '127.0.0.1', '--json', ...extra]),
  );
  try {
    const listening = await proc.waitForEventNamed('listening', TT_START_TIMEOUT_MS);
    const checked = await proc.waitForEventNamed('checked', TT_CHECK_TIMEOUT_MS);
    return { proc, port: Number(listening['port']), checked, stop: async () => void (await proc.kill()) };
  } catch (err) {
    await proc.kill();
    throw err;
  }
}
