/**
 * Transmission 3.00 (transmission-cli) for interop tests (BEP 3 over TCP), configured through
 * a settings.json in a temp config dir: DHT, LPD, PEX, uTP, port forwarding and RPC off, bound
 * to 127.0.0.1. Transmission ignores 127.x peers from trackers: on loopback, connect to it.
 * Run under `stdbuf -o0`: piped, its status line sat ~10 s in a 4 KiB stdout buffer.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type ManagedProcess } from './process.js';

export const TRANSMISSION_CLI = 'transmission-cli';
export const TRANSMISSION_START_TIMEOUT_MS = 60_000;
/** coreutils stdbuf: execs the command (same PID) with stdout unbuffered. */
export const STDBUF = '/usr/bin/stdbuf';

/** The settings.json we give every transmission-cli. */
export function transmissionSettings(port: number, downloadDir: string, encryptionRequired = false): Record<string, unknown> {
  return {
    'dht-enabled': false,
    'lpd-enabled': false,
    'pex-enabled': false,
    'utp-enabled': false,
    'port-forwarding-enabled': false,
    'rpc-enabled': false,
    'blocklist-enabled': false,
    'bind-address-ipv4': '127.0.0.1',
    'bind-address-ipv6': '::1',
    'peer-port': port,
    'peer-port-random-on-start': false,
    'download-dir': downloadDir,
    'incomplete-dir-enabled': false,
    // 0: prefer unencrypted; 2: require encryption (RC4), as users set it for privacy
    encryption: encryptionRequired ? 2 : 0,
    'speed-limit-up-enabled': false,
    'speed-limit-down-enabled': false,
    'ratio-limit-enabled': false,
    'message-level': 2,
  };
}

export interface TransmissionOptions {
  torrent: string;
  /** Where the data is (seeder) or goes (leecher). */
  dir: string;
  port: number;
  /** Accept encrypted (MSE, RC4) connections only ("require encryption"). */
  encryptionRequired?: boolean;
}

export interface TransmissionClient {
  proc: ManagedProcess;
  configDir: string;
  /** Resolves once transmission-cli reports it is seeding (download complete or data verified). */
  waitSeeding(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** Start transmission-cli on a torrent; it keeps running (seeding) until stopped. */
export async function startTransmission(opts: TransmissionOptions): Promise<TransmissionClient> {
  const configDir = await mkdtemp(join(tmpdir(), 'tt-transmission-'));
  await writeFile(join(configDir, 'settings.json'), JSON.stringify(transmissionSettings(opts.port, opts.dir, opts.encryptionRequired), null, 2));
  const args = ['-g', configDir, '-w', opts.dir, '-p', String(opts.port), '-M', opts.encryptionRequired ? '-er' : '-et', '-D', '-U', opts.torrent];
  // transmission-cli prints "Seeding" every 200 ms without flushing; unbuffered, waitSeeding sees it at once
  const proc = existsSync(STDBUF)
    ? startProcess('transmission-cli', STDBUF, ['-o0', TRANSMISSION_CLI, ...args])
    : startProcess('transmission-cli', TRANSMISSION_CLI, args);
  // killAll() ends it without stop(): drop its config dir whenever it exits
  proc.child.once('close', () => void rm(configDir, { recursive: true, force: true }).catch(() => undefined));
  return {
    proc,
    configDir,
    waitSeeding: async (timeoutMs) => void (await proc.waitForOutput(/Seeding/, timeoutMs)),
    stop: async () => {
      await proc.kill();
      await rm(configDir, { recursive: true, force: true });
    },
  };
}
