/**
 * `tt demo`: a real download through a local demo swarm, offline. Generates
 * data in a temporary folder, makes a torrent of it, starts an in-process
 * HTTP tracker and `tt` seeders on 127.0.0.1, then downloads with the
 * ordinary download path and progress display, verifies the bytes against
 * the originals, prints what happened and removes everything.
 */
import type { Command } from 'commander';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TtError } from '../core/errors.js';
import { createTorrentFromPath } from '../metainfo/create.js';
import { parseTorrent } from '../metainfo/parse-torrent.js';
import { Listener } from '../session/listener.js';
import { TorrentSession } from '../session/torrent-session.js';
import { DEFAULT_MAX_PEERS_PER_IP } from '../session/peer-pool.js';
import { startTrackerServer } from '../tracker/server.js';
import { humanBytes } from './format.js';
import { Reporter, chooseMode } from './reporter.js';
import { runSession, summarize } from './run-session.js';
import { parseCount, parseSize } from './units.js';
import { onStop, stopError, type StopCause } from './stop.js';

interface DemoOptions {
  size: number;
  seeders: number;
  pieceLength?: number;
  uploadLimit?: number;
  keep?: boolean;
  quiet?: boolean;
  json?: boolean;
}

const HOST = '127.0.0.1';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('download a generated torrent from a local demo swarm (offline, 127.0.0.1 only)')
    .option('--size <size>', 'total size of the demo data', parseSize, 64 * 1024 * 1024)
    .option('--seeders <n>', 'number of tt seeders in the swarm', parseCount, 2)
    .option('--piece-length <size>', 'piece length of the demo torrent', parseSize)
    .option('--upload-limit <rate>', 'limit each seeder (bytes/s) to watch the swarm at work', parseSize)
    .option('--keep', 'keep the temporary folder instead of removing it')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'print newline-delimited JSON events on stdout')
    .action(async (opts: DemoOptions) => {
      if (opts.size < 1) throw new TtError('USAGE', '--size must be at least 1 byte');
      if (opts.seeders > 20) throw new TtError('USAGE', '--seeders: at most 20');
      const reporter = new Reporter(chooseMode(opts));
      const work = await mkdtemp(join(tmpdir(), 'tt-demo-'));
      const cleanup: (() => Promise<unknown>)[] = [];
      // Ctrl-C while the swarm is set up (a 1 GiB demo writes and hashes its data first): stop at the
      // next step, and still remove the temporary folder; the download then handles its own stops
      let setupStop: StopCause | undefined;
      const starting = new Set<TorrentSession>();
      const removeSetupStop = onStop((cause) => {
        setupStop = cause;
        for (const s of starting) s.interruptStart();
      });
      const stopIfAsked = (): void => {
        if (setupStop) throw stopError(setupStop, ' while setting up the demo swarm; its temporary folder is removed');
      };
      try {
        // 1. data: a small multi-file layout whose files cross piece boundaries
        const seedRoot = join(work, 'seed');
        const name = 'tt-demo';
        const files = splitSizes(opts.size);
        const digests = new Map<string, string>();
        await mkdir(join(seedRoot, name, 'data'), { recursive: true });
        for (const [i, size] of files.entries()) {
          const rel = i === 0 ? 'README.txt' : join('data', `part-${i}.bin`);
          const bytes = i === 0 ? demoReadme(size) : randomBytes(size);
          await writeFile(join(seedRoot, name, rel), bytes);
          digests.set(rel, sha1(bytes));
          stopIfAsked();
        }
        // 2. tracker and torrent
        const tracker = await startTrackerServer({ host: HOST, port: 0, interval: 60 });
        cleanup.push(() => tracker.close());
        const torrentBytes = await createTorrentFromPath(join(seedRoot, name), {
          announce: tracker.httpUrl,
          comment: 'tt demo swarm',
          createdBy: 'tt demo',
          ...(opts.pieceLength !== undefined ? { pieceLength: opts.pieceLength } : {}),
        });
        stopIfAsked();
        const torrentPath = join(work, `${name}.torrent`);
        await writeFile(torrentPath, torrentBytes);
        const meta = parseTorrent(torrentBytes);
        reporter.info(
          `demo swarm: ${humanBytes(meta.totalLength)} in ${meta.files.length} files, ${meta.pieceCount} pieces, tracker ${tracker.httpUrl}, ${opts.seeders} seeder(s)`,
        );
        // 3. seeders, each with its own listener, as `tt seed` runs them
        for (let i = 0; i < opts.seeders; i++) {
          const listener = await Listener.listen({ host: HOST, port: 0 });
          const seeder = new TorrentSession({
            meta,
            root: seedRoot,
            mode: 'seed',
            listener,
            uploadLimit: opts.uploadLimit ?? 0,
          });
          cleanup.push(async () => {
            await seeder.stop();
            await listener.close();
          });
          starting.add(seeder);
          await seeder.start().catch((err: unknown) => {
            stopIfAsked();
            throw err;
          });
          starting.delete(seeder);
          stopIfAsked();
        }
        removeSetupStop(); // a stop from here on is the download's (runSession)
        // 4. the download, through the ordinary path
        const out = join(work, 'download');
        const started = Date.now();
        const { session } = await runSession({
          meta,
          root: out,
          mode: 'download',
          host: HOST,
          port: 0,
          peerTimeoutMs: 30_000,
          // every demo seeder is at 127.0.0.1
          maxPeersPerIp: Math.max(DEFAULT_MAX_PEERS_PER_IP, opts.seeders),
          goal: { stopWhenComplete: true },
          reporter,
        });
        const seconds = (Date.now() - started) / 1000;
        // 5. verify against the originals, byte for byte
        for (const [rel, digest] of digests) {
          const got = sha1(await readFile(join(out, name, rel)));
          if (got !== digest) throw new TtError('INCOMPLETE', `demo: ${rel} differs from the original`);
        }
        const { line, fields } = summarize(session, seconds);
        reporter.summary(`${line} | ${digests.size} files verified against the originals`, { ...fields, verifiedFiles: digests.size });
        if (opts.keep) reporter.info(`kept ${work} (torrent: ${torrentPath})`);
      } finally {
        removeSetupStop();
        for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
        if (!opts.keep) await rm(work, { recursive: true, force: true });
      }
    });
}

/** A README plus a few files of uneven sizes that together make `total`. */
function splitSizes(total: number): number[] {
  const readme = Math.min(total, 1000);
  let rest = total - readme;
  const sizes = [readme];
  const shares = [0.5, 0.3, 0.2];
  for (const [i, share] of shares.entries()) {
    const size = i === shares.length - 1 ? rest : Math.floor((total - readme) * share) + 7;
    const clamped = Math.max(0, Math.min(size, rest));
    if (clamped > 0 || i === shares.length - 1) sizes.push(clamped);
    rest -= clamped;
  }
  return sizes;
}

function demoReadme(size: number): Buffer {
  const text = 'This folder was downloaded by tt demo from a local swarm on 127.0.0.1.\n';
  return Buffer.from(text.repeat(Math.ceil(size / text.length)).slice(0, size));
}

function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}
