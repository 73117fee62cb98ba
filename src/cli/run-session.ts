/**
 * Runs one TorrentSession to its goal for the download and seed commands:
 * wires session events to the Reporter, stops gracefully on Ctrl-C, SIGTERM,
 * SIGHUP or a dead stdout (stop.ts: announce `stopped`, keep verified pieces
 * and the resume record, exit 130, or 6 when stdout could not be written),
 * and decides when the job is done (download complete, or a seeding goal met).
 */
import type { PeerAddress } from '../core/peer-address.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { DhtNode } from '../dht/node.js';
import { Listener } from '../session/listener.js';
import { openDht, reportDhtLookup, type DhtConfig } from './dht-setup.js';
import { TorrentSession, type SessionOptions } from '../session/torrent-session.js';
import { formatDuration, formatRate, humanBytes } from './format.js';
import type { Reporter, ShownSizes } from './reporter.js';
import { bytesIn, hiddenByPiece } from '../metainfo/completion.js';
import { onStop, type StopCause, stopError } from './stop.js';
import { TtError } from '../core/errors.js';

export interface RunGoal {
  /** Stop once the download completes (false: go on seeding). */
  stopWhenComplete: boolean;
  /** Seeding goals after completion (any reached ends the run). */
  seedRatio?: number;
  seedTimeS?: number;
}

export interface RunOptions extends Omit<SessionOptions, 'listener' | 'meta' | 'dht'> {
  meta: Metainfo;
  /** A DHT node opened earlier (a magnet's metadata phase); closed at the end. */
  dht?: DhtNode | undefined;
  /** Open a DHT node for this run (when `dht` is not given and the torrent is not private). */
  dhtConfig?: DhtConfig | undefined;
  /** A listener opened earlier (a magnet's metadata phase announced its port); closed at the end like our own. */
  listener?: Listener;
  host?: string;
  port?: number;
  goal: RunGoal;
  reporter: Reporter;
  /** Show peer connects and disconnects with their reasons. */
  verbose?: boolean;
  /** Only RC4-encrypted connections (MSE), incoming and outgoing. */
  requireEncryption?: boolean;
  /** Stop on SIGINT/SIGTERM/SIGHUP and a dead stdout (stop.ts; the CLI does, embedded users may not). */
  handleSignals?: boolean;
}

const PROGRESS_INTERVAL_MS = 1_000;

/** What the status line says the run is doing. `tt seed` never downloads, --partial or not. */
export function phaseLabel(mode: 'download' | 'seed', done: boolean, stopWhenComplete: boolean): string {
  if (mode === 'seed') return 'seeding';
  if (!done) return 'downloading';
  return stopWhenComplete ? 'done' : 'seeding';
}

/** The `pex` event of a session or a magnet's metadata phase: a JSON event, and a line with --verbose. */
export function reportPex(reporter: Reporter, verbose: boolean): (peer: string, added: number, fresh: number) => void {
  return (peer, added, fresh) => {
    reporter.event('pex', { peer, added, fresh });
    if (verbose) reporter.info(`peer ${peer}: exchanged peers (PEX): ${added} named, ${fresh} new`);
  };
}

export interface RunResult {
  session: TorrentSession;
  /** From the start until the download completed (the whole run when it never did): what its average rate is over. */
  downloadSeconds: number;
  /** From completion until the seeding goal or the stop (0 when the run was not to seed on). */
  seededSeconds: number;
}

/** Resolves when the goal is met; rejects with a TtError (stop.ts: INTERRUPTED on a signal or a closed stdout). */
export async function runSession(opts: RunOptions): Promise<RunResult> {
  const { reporter, meta, goal } = opts;
  const listenerOpts: { host?: string; port?: number; requireEncryption?: boolean } = { requireEncryption: opts.requireEncryption === true };
  if (opts.host !== undefined) listenerOpts.host = opts.host;
  if (opts.port !== undefined) listenerOpts.port = opts.port;
  const listener = opts.listener ?? (await Listener.listen(listenerOpts));
  let dht = opts.dht;
  if (meta.private && (dht || opts.dhtConfig)) {
    reporter.info('private torrent: the DHT is not used (BEP 27)');
    await dht?.close();
    dht = undefined;
  } else if (!dht && opts.dhtConfig) {
    dht = await openDht(opts.dhtConfig, listener.port, reporter);
  }
  const session = new TorrentSession({ ...opts, listener, dht });
  const started = Date.now();
  let completedAt: number | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const label = (): string => phaseLabel(opts.mode, session.done, goal.stopWhenComplete);
  const hidden = hiddenByPiece(meta, session.selection);
  const progress = (): void => reporter.progress(session.stats(), label(), shownSizes(session, hidden));

  let settle!: { resolve: () => void; reject: (e: unknown) => void };
  const finished = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  finished.catch(() => undefined); // may reject before it is awaited (a signal during checking)
  // listening for a stop before the first event: whoever reads it may signal at once
  let stopped: Error | undefined;
  let stopCause: StopCause | undefined;
  let failure: unknown;
  let running = false; // start() is done: existing data checked, files open
  const kept = (): string => `; ${session.have.count} of ${session.geometry.pieceCount} pieces verified and kept`;
  const removeStop =
    opts.handleSignals !== false
      ? onStop((cause: StopCause) => {
          // seeding (a download that completed and seeds on with --seed, or `tt seed` once its data is
          // checked): Ctrl-C or SIGTERM is how seeding ends, not a failure: the summary and exit 0, as
          // aria2c (a hangup, or a dead stdout, still stops it as below: there is nobody to tell)
          const seeding = opts.mode === 'download' ? completedAt !== undefined : running;
          if (cause.kind === 'signal' && cause.signal !== 'SIGHUP' && seeding) {
            settle.resolve();
            return;
          }
          stopCause = cause;
          const starting = opts.mode === 'seed' ? ' while checking its data' : ' while checking existing data (or creating files); nothing verified is lost';
          const tail = running ? kept() : starting;
          stopped = stopError(cause, tail);
          settle.reject(stopped);
          session.interruptStart(); // checking a large torrent stops now, not when it is done
        })
      : () => undefined;

  reporter.event('listening', { port: listener.port });
  session.on('checking', (p) => reporter.checking(p.checked, p.total));
  session.on('checked', (have, total, resumed) => {
    reporter.endChecking();
    reporter.event('checked', { have, pieceCount: total, resumed });
    const fromRecord = resumed > 0 ? ` (${resumed} from the resume record, their files unchanged since the last run)` : '';
    if (have > 0 || opts.mode === 'seed') reporter.info(`checked existing data: ${have} of ${total} pieces present${fromRecord}`);
  });
  session.on('warning', (m) => reporter.warn(m));
  session.on('dht-lookup', reportDhtLookup(reporter, opts.verbose === true, dht));
  session.on('web-seed-dropped', (url, reason) => {
    reporter.event('web-seed-dropped', { url, reason });
    if (reporter.mode !== 'json') reporter.warn(`web seed ${url} dropped: ${reason}`);
  });
  session.on('pex', reportPex(reporter, opts.verbose === true));
  if (opts.verbose) {
    session.on('peer-connected', (peer, encrypted) => reporter.info(`peer ${peer}: connected${encrypted ? ' (encrypted, RC4)' : ''}`));
    session.on('peer-dial-failed', (peer, reason) => reporter.info(`peer ${peer}: cannot connect: ${reason}`));
    session.on('peer-closed', (peer, reason) => reporter.info(`peer ${peer}: closed: ${reason}`));
    session.on('peer-refused', (peer, reason) => reporter.info(`peer ${peer}: refused: ${reason}`));
    listener.on('refused', (peer, reason) => reporter.info(`peer ${peer}: refused: ${reason}`));
  }
  session.on('piece-failed', (index, peers) => {
    reporter.event('piece-failed', { index, peers });
    if (reporter.mode !== 'json') reporter.warn(`piece ${index} failed its hash check; fetching it again`);
  });
  session.on('peer-banned', (peer, reason) => {
    reporter.event('peer-banned', { peer, reason });
    if (reporter.mode !== 'json') reporter.warn(`banned peer ${peer}: ${reason}`);
  });

  session.on('error', (err) => settle.reject(err));
  session.on('complete', () => {
    completedAt ??= Date.now();
    reporter.event('complete', { seconds: (completedAt - started) / 1000 });
    if (goal.stopWhenComplete) settle.resolve();
    else if (opts.mode === 'download') reporter.info('download complete; seeding (Ctrl-C to stop)');
    else reporter.info(`seeding ${meta.name} on port ${listener.port} (Ctrl-C to stop)`);
  });

  try {
    await session.start().catch((err: unknown) => {
      throw stopped ?? err; // interrupted: say why, as after the start
    });
    running = true;
    reporter.event('started', {
      infoHash: meta.infoHashHex,
      name: meta.name,
      totalLength: meta.totalLength,
      pieceCount: meta.pieceCount,
      have: session.have.count,
      port: listener.port,
    });
    ticker = setInterval(() => {
      const stats = session.stats();
      progress();
      if (completedAt !== undefined && !goal.stopWhenComplete) {
        const ratio = stats.uploaded / Math.max(1, meta.totalLength);
        if (goal.seedRatio !== undefined && ratio >= goal.seedRatio) settle.resolve();
        if (goal.seedTimeS !== undefined && Date.now() - completedAt >= goal.seedTimeS * 1000) settle.resolve();
      }
    }, PROGRESS_INTERVAL_MS);
    await finished;
    const endedAt = Date.now();
    await session.flush();
    progress();
    return {
      session,
      downloadSeconds: ((completedAt ?? endedAt) - started) / 1000,
      seededSeconds: completedAt !== undefined && !goal.stopWhenComplete ? (endedAt - completedAt) / 1000 : 0,
    };
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    if (ticker) clearInterval(ticker);
    removeStop();
    // a second Ctrl-C during this exits at once (stop.ts)
    await session.stop();
    // pieces whose writes stop() waited for are kept too: count them in the message
    if (stopped && stopCause && running) stopped.message = stopError(stopCause, kept()).message;
    // a download given up (no peers, --stall-timeout, a disk error) says what it keeps, as a stop does
    else if (failure instanceof TtError && running && opts.mode === 'download' && !session.done && session.have.count > 0) failure.message += kept();
    await Promise.all([listener.close(), dht?.close()]);
    reporter.close();
  }
}

/**
 * The wanted files' bytes verified and in all: the wanted pieces' bytes
 * without the BEP 47 padding and the unselected files' shares in them, as
 * people count a torrent's (or a selection's) size.
 */
export function shownSizes(session: TorrentSession, hidden: ReadonlyMap<number, number> = hiddenByPiece(session.meta, session.selection)): ShownSizes {
  const s = session.stats();
  const wanted = session.selection?.wanted;
  const hiddenWanted = bytesIn(hidden, wanted);
  const hiddenHave = bytesIn(hidden, { has: (i) => session.have.has(i) && (wanted === undefined || wanted.has(i)) });
  return { done: s.wantedLength - s.wantedLeft - hiddenHave, total: s.wantedLength - hiddenWanted };
}

/**
 * The one-line summary printed at the end of a run of `seconds`. Given the
 * run's timing, the time and average rate shown are the download's (until it
 * completed), and the seeding after it (--seed, --seed-time) is said apart,
 * so it does not dilute the rate.
 */
export function summarize(
  session: TorrentSession,
  seconds: number,
  timing: Pick<RunResult, 'downloadSeconds' | 'seededSeconds'> = { downloadSeconds: seconds, seededSeconds: 0 },
  mode: 'download' | 'seed' = 'download',
): { line: string; fields: Record<string, unknown> } {
  const { downloadSeconds, seededSeconds } = timing;
  const s = session.stats();
  const ratio = s.uploaded / Math.max(1, session.meta.totalLength);
  const selected = session.selection ? ` (${session.selection.selectedCount} of ${session.selection.fileCount} files)` : '';
  const sizes = shownSizes(session);
  const what = `${session.meta.name}${selected} ${humanBytes(sizes.done)}/${humanBytes(sizes.total)}`;
  // `tt seed` downloads nothing: its time is the seeding's (a partial copy's, from the start)
  const head =
    mode === 'seed'
      ? `seeded: ${what} for ${formatDuration(seededSeconds > 0 ? seededSeconds : downloadSeconds)} | uploaded ${humanBytes(s.uploaded)}`
      : `${session.done ? 'complete' : 'stopped'}: ${what}` +
        ` in ${formatDuration(downloadSeconds)} (avg ${formatRate(s.downloaded / Math.max(downloadSeconds, 0.001))})` +
        (seededSeconds > 0 ? `, then seeded ${formatDuration(seededSeconds)}` : '') +
        ` | downloaded ${humanBytes(s.downloaded)} uploaded ${humanBytes(s.uploaded)}`;
  const line =
    `${head} ratio ${ratio.toFixed(2)}` +
    (s.failedPieces > 0 ? ` | ${s.failedPieces} pieces failed` : '') +
    (s.wastedBytes > 0 ? ` | ${humanBytes(s.wastedBytes)} wasted` : '') +
    (s.webSeedBytes > 0 ? ` | ${humanBytes(s.webSeedBytes)} from web seeds` : '') +
    (s.bannedPeers > 0 ? ` | ${s.bannedPeers} peers banned` : '');
  return {
    line,
    fields: {
      complete: session.done,
      have: s.have,
      pieceCount: s.pieceCount,
      wantedPieces: s.wantedPieces,
      wantedHave: s.wantedHave,
      ...(session.selection ? { selectedFiles: session.selection.selectedCount } : {}),
      seconds,
      downloadSeconds,
      seededSeconds,
      downloaded: s.downloaded,
      uploaded: s.uploaded,
      failedPieces: s.failedPieces,
      bannedPeers: s.bannedPeers,
      wastedBytes: s.wastedBytes,
      directWriteBytes: s.directWriteBytes,
      webSeedBytes: s.webSeedBytes,
      ...(s.directWritesOff !== undefined ? { directWritesOff: s.directWritesOff } : {}),
    },
  };
}
