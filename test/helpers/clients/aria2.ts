/**
 * aria2c 1.36 as a BitTorrent seeder or leecher for interop tests (BEP 3 over TCP),
 * with the loopback-only flags from INTEROP.md: no DHT, LPD, PEX, IPv6; bound to 127.0.0.1.
 * aria2 seeders are only found through a tracker: wait for them with waitForSeeders().
 */
import { startProcess, type ManagedProcess } from './process.js';

export const ARIA2C = 'aria2c';
export const ARIA2_START_TIMEOUT_MS = 60_000;

/** Flags every aria2c we start gets. */
export function aria2BaseArgs(port: number, summaryIntervalS = 0): string[] {
  return [
    '--no-conf=true',
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--interface=127.0.0.1',
    '--disable-ipv6=true',
    `--listen-port=${port}`,
    '--file-allocation=none',
    '--auto-save-interval=1',
    '--console-log-level=notice',
    `--summary-interval=${summaryIntervalS}`,
    '--enable-color=false',
    '--bt-tracker-connect-timeout=5',
    '--bt-tracker-timeout=10',
  ];
}

export interface Aria2SeedOptions {
  torrent: string;
  /** The folder that holds the torrent's name (file or folder). */
  dataDir: string;
  port: number;
  extraArgs?: readonly string[];
}

/** Start an aria2c seeder over existing data; resolves once it has verified the data and listens. */
export async function startAria2Seeder(opts: Aria2SeedOptions): Promise<ManagedProcess> {
  const proc = startProcess('aria2c seeder', ARIA2C, [
    // the seeder prints its SEED( status line once a second: that is how we know it is up
    ...aria2BaseArgs(opts.port, 1),
    `--dir=${opts.dataDir}`,
    '--check-integrity=true',
    '--bt-seed-unverified=false',
    '--seed-ratio=0.0',
    ...(opts.extraArgs ?? []),
    opts.torrent,
  ]);
  try {
    await proc.waitForOutput(/listening on TCP port/, ARIA2_START_TIMEOUT_MS);
    await proc.waitForOutput(/SEED\(/, ARIA2_START_TIMEOUT_MS);
    return proc;
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

export interface Aria2LeechOptions {
  torrent: string;
  outDir: string;
  port: number;
  /** Give up after this many seconds (aria2 --stop). */
  timeoutS?: number;
  extraArgs?: readonly string[];
}

/** Start an aria2c leecher that exits 0 once the download is complete (--seed-time=0). */
export function startAria2Leecher(opts: Aria2LeechOptions): ManagedProcess {
  return startProcess('aria2c leecher', ARIA2C, [
    ...aria2BaseArgs(opts.port),
    `--dir=${opts.outDir}`,
    '--seed-time=0',
    `--stop=${opts.timeoutS ?? 120}`,
    ...(opts.extraArgs ?? []),
    opts.torrent,
  ]);
}

/** Download with aria2c to completion (exit 0 and "(OK)" in its summary). */
export async function aria2Download(opts: Aria2LeechOptions): Promise<ManagedProcess> {
  const proc = startAria2Leecher(opts);
  await proc.expectSuccess((opts.timeoutS ?? 120) * 1000 + 15_000);
  if (!/\|OK\s*\|/.test(proc.output())) throw proc.failure('exited 0 without an OK download result');
  return proc;
}
