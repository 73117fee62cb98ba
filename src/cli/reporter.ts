/**
 * How a running session is shown: a cli-progress bar on a TTY, a plain status
 * line every few seconds off a TTY, newline-delimited JSON events with
 * --json (documented in README "JSON events"), or nothing with --quiet.
 * Reads session stats; never changes the session. Sizes shown to people are
 * the files' bytes (BEP 47 padding excluded) when the caller gives them;
 * JSON events keep the piece bytes (`left` is what trackers are told).
 */
import cliProgress from 'cli-progress';
import type { SessionStats } from '../session/torrent-session.js';
import { formatDuration, formatRate, humanBytes, sanitizeForTerminal, terminalSafeJsonText } from './format.js';

export type ReporterMode = 'tty' | 'plain' | 'json' | 'quiet';

export function chooseMode(opts: { json?: boolean; quiet?: boolean }): ReporterMode {
  if (opts.json) return 'json';
  if (opts.quiet) return 'quiet';
  return process.stderr.isTTY ? 'tty' : 'plain';
}

const PLAIN_INTERVAL_MS = 5_000;

export class Reporter {
  readonly mode: ReporterMode;
  #bar: cliProgress.SingleBar | undefined;
  #lastPlain = 0;
  #label = 'downloading';

  constructor(mode: ReporterMode) {
    this.mode = mode;
  }

  /** One JSON event (json mode only). */
  event(name: string, fields: Record<string, unknown> = {}): void {
    // names and messages can come from peers and torrents: nothing a terminal would act on reaches stdout
    if (this.mode === 'json') process.stdout.write(`${terminalSafeJsonText(JSON.stringify({ event: name, time: Date.now(), ...fields }))}\n`);
  }

  /**
   * A human line on stderr (tty/plain), or a JSON 'info' event. The text is
   * sanitized in both: a message quoting a magnet's `dn=` or a tracker URL
   * must not hand a JSON reader escape sequences to print (data fields, such
   * as file names in events, stay exact: JSON escapes them).
   */
  info(message: string): void {
    if (this.mode === 'json') this.event('info', { message: sanitizeForTerminal(message) });
    else if (this.mode !== 'quiet') this.#line(sanitizeForTerminal(message));
  }

  warn(message: string): void {
    if (this.mode === 'json') this.event('warning', { message: sanitizeForTerminal(message) });
    else if (this.mode !== 'quiet') this.#line(`warning: ${sanitizeForTerminal(message)}`);
  }

  /** Verification of existing data. */
  checking(checked: number, total: number): void {
    if (this.mode === 'tty') {
      this.#ensureBar('checking', total);
      this.#bar!.update(checked, { stats: '' });
    } else if (this.mode === 'plain' && Date.now() - this.#lastPlain > PLAIN_INTERVAL_MS) {
      this.#lastPlain = Date.now();
      this.#line(`checking ${checked}/${total} pieces`);
    }
  }

  endChecking(): void {
    this.#stopBar();
  }

  /** `sizes`: the wanted files' bytes verified and in all (padding excluded), for people; default the piece bytes. */
  progress(stats: SessionStats, label: string, sizes?: ShownSizes): void {
    if (this.mode === 'json') {
      this.event('progress', {
        have: stats.have,
        pieceCount: stats.pieceCount,
        left: stats.left,
        wantedPieces: stats.wantedPieces,
        wantedHave: stats.wantedHave,
        wantedLeft: stats.wantedLeft,
        downloaded: stats.downloaded,
        uploaded: stats.uploaded,
        downloadRate: Math.round(stats.downloadRate),
        uploadRate: Math.round(stats.uploadRate),
        peers: stats.peers,
        knownPeers: stats.knownPeers,
      });
      return;
    }
    const text = statusText(stats, sizes);
    if (this.mode === 'tty') {
      if (label !== this.#label && this.#bar) {
        // the phase changed (downloading -> done/seeding): the old bar ends on where things are now, not
        // on its last frame (82%, an ETA), and the new one starts there too instead of at 0
        this.#bar.update(stats.wantedHave, { stats: text });
        this.#stopBar();
      }
      this.#label = label;
      this.#ensureBar(label, stats.wantedPieces, stats.wantedHave);
      this.#bar!.update(stats.wantedHave, { stats: text });
    } else if (this.mode === 'plain' && Date.now() - this.#lastPlain > PLAIN_INTERVAL_MS) {
      this.#lastPlain = Date.now();
      const pct = stats.wantedPieces === 0 ? 100 : (100 * stats.wantedHave) / stats.wantedPieces;
      this.#line(`${label} ${pct.toFixed(1)}% ${stats.wantedHave}/${stats.wantedPieces} pieces | ${text}`);
    }
  }

  /** The one-line summary at the end (stdout, so scripts can keep it). */
  summary(line: string, fields: Record<string, unknown>): void {
    this.#stopBar();
    if (this.mode === 'json') this.event('done', fields);
    else if (this.mode !== 'quiet') process.stdout.write(`${sanitizeForTerminal(line)}\n`);
  }

  close(): void {
    this.#stopBar();
  }

  #ensureBar(label: string, total: number, start = 0): void {
    if (this.#bar) return;
    this.#bar = new cliProgress.SingleBar(
      {
        format: `${label.padEnd(11)} {bar} {percentage}% {value}/{total} {stats}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        stream: process.stderr,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    this.#bar.start(total, start, { stats: '' });
  }

  #stopBar(): void {
    if (!this.#bar) return;
    this.#bar.stop();
    this.#bar = undefined;
  }

  #line(text: string): void {
    if (this.#bar) {
      // keep the bar intact: print above it
      process.stderr.write(`\r\x1b[2K${text}\n`);
    } else process.stderr.write(`${text}\n`);
  }
}

/** Bytes to show as done/total (the files' bytes, padding excluded). */
export interface ShownSizes {
  done: number;
  total: number;
}

export function statusText(s: SessionStats, sizes: ShownSizes = { done: s.wantedLength - s.wantedLeft, total: s.wantedLength }): string {
  // the ETA counts what is still to come over the wire: whole pieces, padding included
  const eta = s.downloadRate > 0 && s.wantedLeft > 0 ? formatDuration(s.wantedLeft / s.downloadRate) : '-';
  return `${humanBytes(sizes.done)}/${humanBytes(sizes.total)} | down ${formatRate(s.downloadRate)} up ${formatRate(s.uploadRate)} | peers ${s.peers}/${s.knownPeers} | ETA ${eta}`;
}
