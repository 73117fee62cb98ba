/**
 * `tt download <torrent>`: fetch every piece from the swarm, verify it, write
 * it under --out, and exit 0 only when everything is verified on disk.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { PeerAddress } from '../core/peer-address.js';
import { toDiskError } from '../storage/disk-error.js';
import { mkdirp } from '../storage/mkdirp.js';
import { loadTorrent } from './info.js';
import { Reporter, chooseMode } from './reporter.js';
import { runSession, summarize } from './run-session.js';
import { parseCount, parseDuration, parsePeer, parsePort, parseRatio, parseSize } from './units.js';

interface DownloadOptions {
  out: string;
  port?: number;
  bind?: string;
  maxPeers: number;
  peer?: PeerAddress[];
  trackers: boolean;
  uploadLimit?: number;
  downloadLimit?: number;
  uploadSlots: number;
  peerTimeout: number;
  seed?: boolean;
  seedRatio?: number;
  seedTime?: number;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
}

export function registerDownload(program: Command): void {
  program
    .command('download <torrent>')
    .description('download a torrent, verify every piece and write it to disk')
    .option('-o, --out <dir>', 'folder to download into', '.')
    .option('-p, --port <port>', 'TCP port to listen on (default: first free of 6881-6889; 0 = any)', parsePort)
    .option('--bind <address>', 'address to listen on', '0.0.0.0')
    .option('--max-peers <n>', 'most peers connected at once', parseCount, 50)
    .option('--peer <host:port>', 'also connect to this peer (repeatable)', parsePeer)
    .option('--no-trackers', 'do not contact the torrent\'s trackers (use with --peer)')
    .option('--upload-limit <rate>', 'upload limit in bytes/s (e.g. 500K, 2M)', parseSize)
    .option('--download-limit <rate>', 'download limit in bytes/s', parseSize)
    .option('--upload-slots <n>', 'peers unchoked at once', parseCount, 4)
    .option('--peer-timeout <duration>', 'give up when no peer is connected for this long (0 = never)', parseDuration, 120)
    .option('--seed', 'keep seeding after the download completes (until Ctrl-C or a goal)')
    .option('--seed-ratio <ratio>', 'with --seed: stop once uploaded/size reaches this', parseRatio)
    .option('--seed-time <duration>', 'with --seed: stop after seeding this long (e.g. 30m)', parseDuration)
    .option('-v, --verbose', 'show each peer connecting and disconnecting, with the reason')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print newline-delimited JSON events on stdout')
    .action(async (torrent: string, opts: DownloadOptions) => {
      const meta = await loadTorrent(torrent);
      const reporter = new Reporter(chooseMode(opts));
      const root = resolve(opts.out);
      try {
        await mkdirp(root);
      } catch (err) {
        throw toDiskError('create', root, err);
      }
      const keepSeeding = opts.seed === true || opts.seedRatio !== undefined || opts.seedTime !== undefined;
      const started = Date.now();
      reporter.info(`${meta.name}: ${meta.pieceCount} pieces, into ${root}`);
      const session = await runSession({
        meta,
        root,
        mode: 'download',
        host: opts.bind ?? '0.0.0.0',
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        maxPeers: opts.maxPeers,
        uploadSlots: opts.uploadSlots,
        uploadLimit: opts.uploadLimit ?? 0,
        downloadLimit: opts.downloadLimit ?? 0,
        peers: opts.peer ?? [],
        useTrackers: opts.trackers,
        peerTimeoutMs: opts.peerTimeout * 1000,
        goal: {
          stopWhenComplete: !keepSeeding,
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
