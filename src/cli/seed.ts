/**
 * `tt seed <torrent> --dir DIR`: verify the data under DIR, then serve it to
 * the swarm until Ctrl-C (or a ratio/time goal). Refuses to announce itself as
 * a seed while pieces are missing unless --partial is given (exit 7), and
 * data that is not there at all (exit 3, data-folder.ts).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { requireData } from './data-folder.js';
import { loadTorrent } from './info.js';
import { Reporter, chooseMode } from './reporter.js';
import { runSession, summarize } from './run-session.js';
import { addSharedOptions, seedGoal, sharedRunOptions, type SharedOptions } from './session-options.js';

interface SeedOptions extends SharedOptions {
  dir: string;
  partial?: boolean;
}

export function registerSeed(program: Command): void {
  const cmd = program
    .command('seed <torrent>')
    .description('serve a complete copy of a torrent to others')
    .option('-d, --dir <dir>', 'folder that holds the torrent\'s files (as --out for download)', '.')
    .option('--partial', 'serve the pieces that are present even when some are missing');
  addSharedOptions(cmd, 'also connect to this peer (repeatable), e.g. a leecher that cannot reach us', '').action(
    async (torrent: string, opts: SeedOptions) => {
      const meta = await loadTorrent(torrent);
      const root = resolve(opts.dir);
      // nothing there at all is not a partial copy (exit 7): --partial would have nothing to serve either
      await requireData(root, meta);
      const reporter = new Reporter(chooseMode(opts));
      const started = Date.now();
      const run = await runSession({
        ...sharedRunOptions(opts),
        meta,
        root,
        mode: 'seed',
        allowPartial: opts.partial === true,
        goal: seedGoal(opts, false),
        reporter,
      });
      const { line, fields } = summarize(run.session, (Date.now() - started) / 1000, run, 'seed');
      reporter.summary(line, fields);
    },
  );
}
