/**
 * `tt seed <torrent> --dir DIR`: verify the data under DIR, then serve it to
 * the swarm until Ctrl-C (or a ratio/time goal). Refuses to announce itself as
 * a seed while pieces are missing unless --partial is given.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadTorrent } from './info.js';
import { Reporter, chooseMode } from './reporter.js';
import { runSession, summarize } from './run-session.js';
import type { PeerAddress } from '../core/peer-address.js';
import { parseCount, parseDuration, parsePeer, parsePort, parseRatio, parseSize } from './units.js';

interface SeedOptions {
  dir: string;
  port?: number;
  bind?: string;
  maxPeers: number;
  uploadLimit?: number;
  uploadSlots: number;
  partial?: boolean;
  peer?: PeerAddress[];
  seedRatio?: number;
  seedTime?: number;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
}

export function registerSeed(program: Command): void {
  program
    .command('seed <torrent>')
    .description('serve a complete copy of a torrent to others')
    .option('-d, --dir <dir>', 'folder that holds the torrent\'s files (as --out for download)', '.')
    .option('-p, --port <port>', 'TCP port to listen on (default: first free of 6881-6889; 0 = any)', parsePort)
    .option('--bind <address>', 'address to listen on', '0.0.0.0')
    .option('--max-peers <n>', 'most peers connected at once', parseCount, 50)
    .option('--upload-limit <rate>', 'upload limit in bytes/s (e.g. 500K, 2M)', parseSize)
    .option('--upload-slots <n>', 'peers unchoked at once', parseCount, 4)
    .option('--partial', 'serve the pieces that are present even when some are missing')
    .option('--peer <host:port>', 'also connect to this peer (repeatable), e.g. a leecher that cannot reach us', parsePeer)
    .option('--seed-ratio <ratio>', 'stop once uploaded/size reaches this', parseRatio)
    .option('--seed-time <duration>', 'stop after seeding this long (e.g. 30m)', parseDuration)
    .option('-v, --verbose', 'show each peer connecting and disconnecting, with the reason')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print newline-delimited JSON events on stdout')
    .action(async (torrent: string, opts: SeedOptions) => {
      const meta = await loadTorrent(torrent);
      const reporter = new Reporter(chooseMode(opts));
      const root = resolve(opts.dir);
      const started = Date.now();
      const session = await runSession({
        meta,
        root,
        mode: 'seed',
        host: opts.bind ?? '0.0.0.0',
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        maxPeers: opts.maxPeers,
        uploadSlots: opts.uploadSlots,
        uploadLimit: opts.uploadLimit ?? 0,
        allowPartial: opts.partial === true,
        peers: opts.peer ?? [],
        goal: {
          stopWhenComplete: false,
          ...(opts.seedRatio !== undefined ? { seedRatio: opts.seedRatio } : {}),
          ...(opts.seedTime !== undefined ? { seedTimeS: opts.seedTime } : {}),
        },
        reporter,
        verbose: opts.verbose === true,
      });
      const { line, fields } = summarize(session, (Date.now() - started) / 1000);
      reporter.summary(line, fields);
    });
}
