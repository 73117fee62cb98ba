/**
 * `tt tracker`: run the embedded tracker (HTTP and UDP on one port) for a
 * private swarm until Ctrl-C, optionally tracking only the torrents named by
 * --allow. The server itself is tracker/server.ts; this file owns the options,
 * the start and stop lines, and stopping (Ctrl-C, SIGTERM, SIGHUP, a dead
 * stdout: stop.ts).
 */
import type { Command } from 'commander';
import { TtError, errorMessage } from '../core/errors.js';
import { startTrackerServer, SERVER_DEFAULT_INTERVAL_S } from '../tracker/server.js';
import { loadTorrent } from './info.js';
import { Reporter, chooseMode } from './reporter.js';
import { parseBindAddress, parseCount, parsePort } from './units.js';
import { onStop, type StopCause, stopError } from './stop.js';

interface TrackerCliOptions {
  port: number;
  bind: string;
  interval: number;
  allow?: string[];
  quiet?: boolean;
  json?: boolean;
}

const DEFAULT_TRACKER_PORT = 6969;

function collect(text: string, previous: string[] = []): string[] {
  return [...previous, text];
}

/** An --allow value: 40 hex characters, or a .torrent whose info hash is meant. */
async function allowedHash(value: string): Promise<Buffer> {
  if (/^[0-9a-fA-F]{40}$/.test(value)) return Buffer.from(value, 'hex');
  return (await loadTorrent(value)).infoHash;
}

export async function runTracker(opts: TrackerCliOptions): Promise<void> {
  const reporter = new Reporter(chooseMode(opts));
  const allowList = opts.allow ? await Promise.all(opts.allow.map(allowedHash)) : undefined;
  let server;
  try {
    server = await startTrackerServer({ host: opts.bind, port: opts.port, interval: opts.interval, ...(allowList ? { allowList } : {}) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new TtError('USAGE', `port ${opts.port} is in use (TCP or UDP); choose another with --port`);
    if (code === 'EADDRNOTAVAIL') throw new TtError('USAGE', `cannot listen on ${opts.bind}: no such local address`);
    throw new TtError('INTERNAL', `tracker did not start: ${errorMessage(err)}`, { cause: err });
  }
  // listening for a stop before saying we listen: whoever reads that may signal at once
  const stopped = new Promise<StopCause>((resolve) => onStop(resolve));
  reporter.event('listening', { port: server.port, httpUrl: server.httpUrl, udpUrl: server.udpUrl, allowed: allowList?.length ?? null });
  reporter.info(`tracker on ${server.httpUrl} and ${server.udpUrl}${allowList ? `, tracking ${allowList.length} torrent(s) only` : ''} (Ctrl-C to stop)`);
  const cause = await stopped;
  await server.close();
  reporter.close();
  throw cause.kind === 'signal' ? new TtError('INTERRUPTED', `tracker stopped by ${cause.signal}`) : stopError(cause, '; tracker stopped');
}

export function registerTracker(program: Command): void {
  program
    .command('tracker')
    .description('run a BitTorrent tracker (HTTP and UDP) for a private swarm, until Ctrl-C')
    .option('-p, --port <port>', 'port for both HTTP and UDP (0 = any free one)', parsePort, DEFAULT_TRACKER_PORT)
    .option('--bind <address>', 'address to listen on', parseBindAddress, '0.0.0.0')
    .option('--interval <seconds>', 'announce interval told to clients', parseCount, SERVER_DEFAULT_INTERVAL_S)
    .option('--allow <hash-or-torrent>', 'track only this torrent (info hash in hex, or a .torrent file; repeatable)', collect)
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print newline-delimited JSON events on stdout')
    .action(async (opts: TrackerCliOptions) => runTracker(opts));
}
