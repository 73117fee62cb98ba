/**
 * `tt download <torrent>`: fetch every piece from the swarm, verify it, write
 * it under --out, and exit 0 only when everything is verified on disk.
 */
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { TtError } from '../core/errors.js';
import { toDiskError } from '../storage/disk-error.js';
import { mkdirp, removeEmptyMade } from '../storage/mkdirp.js';
import type { PeerAddress } from '../core/peer-address.js';
import type { DhtNode } from '../dht/node.js';
import { Listener } from '../session/listener.js';
import { openDht } from './dht-setup.js';
import { loadTorrent } from './info.js';
import { isMagnet, readMagnet, resolveMagnet } from './magnet-source.js';
import { sanitizeForTerminal } from './format.js';
import { Reporter, chooseMode } from './reporter.js';
import { runSession, summarize } from './run-session.js';
import { addSharedOptions, seedGoal, sharedRunOptions, type SharedOptions } from './session-options.js';
import { parseDuration, parseFileList, parseSize } from './units.js';
import { checkWritable, writeWhole } from './write-whole.js';
import { notAFolderError } from './data-folder.js';
import { selectFiles, type FileNumberRanges } from '../metainfo/selection.js';
import { selectOnlyFiles } from '../metainfo/magnet.js';

interface DownloadOptions extends SharedOptions {
  out: string;
  trackers: boolean;
  downloadLimit?: number;
  peerTimeout: number;
  stallTimeout: number;
  seed?: boolean;
  directIo: boolean;
  select?: FileNumberRanges;
  webSeeds: boolean;
  recheck?: boolean;
  sequential?: boolean;
  firstLast?: boolean;
  saveTorrent?: string;
}

export function registerDownload(program: Command): void {
  const cmd = program
    .command('download <torrent>')
    .description('download a torrent (a .torrent file or a magnet link), verify every piece and write it to disk')
    .option('-o, --out <dir>', 'folder to download into', '.')
    .option('--no-trackers', 'do not contact the torrent\'s trackers (use with --peer)')
    .option('--download-limit <rate>', 'download limit in bytes/s', parseSize)
    .option('--peer-timeout <duration>', 'give up when no peer is connected for this long (0 = never)', parseDuration, 120)
    .option('--stall-timeout <duration>', 'give up when no data arrives for this long, even with peers connected (0 = never)', parseDuration, 0)
    .option('-s, --select <files>', 'download only these files: numbers as tt info lists them, e.g. 2 or 1,4-6 (pieces shared with other files are kept in a part file)', parseFileList)
    .option('--sequential', 'download pieces in order, lowest first, instead of rarest first (to watch or inspect files while they download)')
    .option('--first-last', 'download the first and last piece of each wanted file before the rest')
    .option('--save-torrent <file>', 'with a magnet link: write the torrent file (its verified metadata, with the link\'s trackers) to FILE before downloading, to seed it later with tt seed')
    .option('--no-web-seeds', "do not download from the torrent's web seeds (BEP 19 url-list)")
    .option('--seed', 'keep seeding after the download completes (until Ctrl-C or a goal)')
    .option('--recheck', 'hash every piece already on disk, even those the resume record vouches for (files unchanged since an interrupted run)')
    .option('--no-direct-io', 'write everything through the page cache (default: whole aligned pieces bypass it with O_DIRECT where the disk supports it and keeps up)');
  addSharedOptions(cmd, 'also connect to this peer (repeatable)', 'with --seed: ').action(async (torrent: string, opts: DownloadOptions) => {
    const reporter = new Reporter(chooseMode(opts));
    const shared = sharedRunOptions(opts);
    let meta;
    let fromMagnet:
      | { listener: Listener; peerId: Buffer; peers: PeerAddress[]; foundPeers: PeerAddress[]; pexPeers: PeerAddress[]; dht: DhtNode | undefined }
      | undefined;
    if (opts.saveTorrent !== undefined && !isMagnet(torrent)) {
      throw new TtError('USAGE', '--save-torrent is for magnet links (the torrent file is already on disk)');
    }
    if (opts.saveTorrent === '-') throw new TtError('USAGE', "--save-torrent -: standard output carries the download's messages; give a file name");
    // a bad link is said before anything listens or connects
    const magnet = isMagnet(torrent) ? readMagnet(torrent) : undefined;
    if (opts.saveTorrent !== undefined) await checkSaveTorrentPath(resolve(opts.saveTorrent));
    if (magnet) {
      // the port must be known before the metadata phase announces it
      const listener = await Listener.listen({
        ...(shared.host !== undefined ? { host: shared.host } : {}),
        requireEncryption: shared.requireEncryption,
        ...(shared.port !== undefined ? { port: shared.port } : {}),
      });
      // a magnet link does not say whether its torrent is private: the node is closed later if it is
      const dht = shared.dhtConfig ? await openDht(shared.dhtConfig, listener.port, reporter) : undefined;
      try {
        const resolved = await resolveMagnet(
          magnet,
          {
            listener,
            dht,
            dhtWanted: shared.dhtConfig !== undefined,
            peers: shared.peers,
            maxPeersPerIp: shared.maxPeersPerIp,
            useTrackers: opts.trackers,
            timeoutMs: opts.peerTimeout * 1000,
            verbose: shared.verbose,
            pex: shared.pex,
          },
          reporter,
        );
        meta = resolved.meta;
        if (opts.saveTorrent !== undefined) await saveTorrent(resolve(opts.saveTorrent), resolved.torrentFile, reporter);
        // the link's x.pe peers are the user's, as --peer: explicit in the download too (never forgotten)
        const peers = [...shared.peers, ...resolved.linkPeers];
        fromMagnet = { listener, dht, peerId: resolved.peerId, peers, foundPeers: resolved.peers, pexPeers: resolved.pexPeers };
      } catch (err) {
        await Promise.all([listener.close(), dht?.close()]);
        reporter.close();
        throw err;
      }
    } else meta = await loadTorrent(torrent);
    let selection;
    try {
      // BEP 53 so= (a link to some of the torrent's files) unless --select chooses
      const selectOnly = magnet?.selectOnly;
      if (selectOnly && opts.select) reporter.info("--select given: the magnet link's so= is not used");
      selection = opts.select ? selectFiles(meta, opts.select) : selectOnly ? selectOnlyFiles(meta, selectOnly) : undefined;
      if (selection && !opts.select) reporter.info(`the magnet link selects ${selection.selectedCount} of ${selection.fileCount} files (so=); --select overrides it`);
    } catch (err) {
      await Promise.all([fromMagnet?.listener.close(), fromMagnet?.dht?.close()]);
      throw err;
    }
    const root = resolve(opts.out);
    let madeFrom: string | undefined; // the first folder of --out this run created
    try {
      madeFrom = await mkdirp(root);
    } catch (err) {
      await Promise.all([fromMagnet?.listener.close(), fromMagnet?.dht?.close()]);
      throw (await notAFolderError(root, err)) ?? toDiskError('create', root, err);
    }
    const keepSeeding = opts.seed === true || opts.seedRatio !== undefined || opts.seedTime !== undefined;
    const started = Date.now();
    reporter.info(
      selection
        ? `${meta.name}: ${selection.selectedCount} of ${selection.fileCount} files (${selection.wanted.count} of ${meta.pieceCount} pieces), into ${root}`
        : `${meta.name}: ${meta.pieceCount} pieces, into ${root}`,
    );
    const run = await runSession({
      ...shared,
      ...(fromMagnet ?? {}),
      meta,
      root,
      mode: 'download',
      downloadLimit: opts.downloadLimit ?? 0,
      useTrackers: opts.trackers,
      peerTimeoutMs: opts.peerTimeout * 1000,
      stallTimeoutMs: opts.stallTimeout * 1000,
      directWrites: opts.directIo,
      selection,
      webSeeds: opts.webSeeds,
      recheck: opts.recheck === true,
      pieceOrder: { sequential: opts.sequential === true, firstLast: opts.firstLast === true },
      goal: seedGoal(opts, !keepSeeding),
      reporter,
    }).catch(async (err: unknown) => {
      // nothing verified: the session took its files away (storage.ts close); the folders made for --out go too
      await removeEmptyMade(root, madeFrom);
      throw err;
    });
    const { line, fields } = summarize(run.session, (Date.now() - started) / 1000, run);
    reporter.summary(line, fields);
  });
}

/**
 * `--save-torrent FILE`, before anything is fetched: its folder must exist
 * (refused, exit 2, rather than created: a mistyped path would leave a stray
 * folder tree, and tt create -o does not create folders either), and FILE must
 * be nothing or a regular file. Whether a file there is the same torrent is
 * only known once the metadata is in.
 */
async function checkSaveTorrentPath(path: string): Promise<void> {
  const folder = dirname(path);
  const st = await stat(folder).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw toDiskError('open', folder, err);
  });
  if (st === undefined) throw new TtError('USAGE', `--save-torrent ${sanitizeForTerminal(path)}: folder ${sanitizeForTerminal(folder)} does not exist (create it first; nothing downloaded)`);
  if (!st.isDirectory()) throw new TtError('USAGE', `--save-torrent ${sanitizeForTerminal(path)}: ${sanitizeForTerminal(folder)} is not a folder (nothing downloaded)`);
  await checkWritable(path);
}

/** `--save-torrent`: the magnet's torrent file, written whole; the same file already there (a re-run) is fine. */
async function saveTorrent(path: string, bytes: Buffer, reporter: Reporter): Promise<void> {
  const written = await writeWhole(path, bytes, { sameIsFine: true, hint: '(a different torrent file; choose another name for --save-torrent)' });
  reporter.info(`${written ? 'saved' : 'already saved'} the torrent file: ${sanitizeForTerminal(path)}`);
  reporter.event('torrent-saved', { path, bytes: bytes.length, written });
}
