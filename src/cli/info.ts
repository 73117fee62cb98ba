/**
 * `tt info <torrent|->`: show what a torrent holds, for people (sanitized text) or
 * programs (--json, stable field names). Also owns loadTorrent(), the bounded way
 * every command reads a .torrent from a path or stdin. Display only; no BEP logic.
 */
import type { Command } from 'commander';
import { open } from 'node:fs/promises';
import { BencodeError, TtError, errnoReason } from '../core/errors.js';
import { toMagnet } from '../metainfo/magnet.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { numberedFiles } from '../metainfo/selection.js';
import { filesLength } from '../metainfo/completion.js';
import { MAX_TORRENT_BYTES, parseTorrent } from '../metainfo/parse-torrent.js';
import { humanBytes, sanitizeForTerminal, terminalSafeJsonText } from './format.js';
import { DEFAULT_SCRAPE_TIMEOUT_MS, MAX_SCRAPED_TRACKERS, SCRAPE_CONCURRENCY, formatScrape, scrapeAll, trackerUrls, type ScrapeReport } from './scrape-trackers.js';
import { parseDuration } from './units.js';

/** We read one byte past the cap so parseTorrent can tell "too large" from "exactly at the cap". */
const READ_CAP_BYTES = MAX_TORRENT_BYTES + 1;
/** Files listed in human output unless --files is given. */
export const DEFAULT_FILES_SHOWN = 20;

export interface InfoOptions {
  json?: boolean;
  /** List every file instead of the first DEFAULT_FILES_SHOWN. */
  files?: boolean;
  /** Ask every tracker for seeders/leechers/completed (BEP 48 / BEP 15). */
  scrape?: boolean;
  /** Per-tracker scrape budget in seconds (--timeout). */
  timeout?: number;
}

/** The --json document. Field names are stable (documented in the README). */
export interface InfoJson {
  name: string;
  infoHash: string;
  totalLength: number;
  pieceLength: number;
  pieceCount: number;
  private: boolean;
  multiFile: boolean;
  /** `number`: what `tt download --select` takes (1-based; null for padding files). */
  files: { number: number | null; path: string[]; length: number; offset: number; padding: boolean }[];
  trackers: string[][];
  webSeeds: string[];
  createdBy: string | null;
  creationDate: number | null;
  comment: string | null;
  magnet: string;
  /** Only with --scrape: one entry per tracker asked, in tier order. */
  scrape?: ScrapeReport[];
  /** Only with --scrape: trackers past the first MAX_SCRAPED_TRACKERS, not asked. */
  scrapeNotAsked?: number;
}

function readError(what: string, err: unknown): TtError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' && /^magnet:/i.test(what)) {
    // the info dictionary comes from peers: that is the download's first phase, not something info does offline
    return new TtError('INPUT', 'tt info reads .torrent files; a magnet link has no file list until peers send it: use tt download <magnet>', {
      cause: err,
    });
  }
  const reason = code === 'EPERM' ? 'permission denied' : errnoReason(err, 'read failed');
  return new TtError('INPUT', `cannot read ${sanitizeForTerminal(what)}: ${reason}`, { cause: err });
}

async function readFileCapped(path: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw readError(path, err);
  }
  try {
    if ((await fh.stat()).isDirectory()) throw readError(path, Object.assign(new Error('EISDIR'), { code: 'EISDIR' }));
    const buf = Buffer.alloc(READ_CAP_BYTES);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  } catch (err) {
    throw err instanceof TtError ? err : readError(path, err);
  } finally {
    await fh.close();
  }
}

async function readStdinCapped(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of process.stdin) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      chunks.push(b);
      total += b.length;
      if (total >= READ_CAP_BYTES) break; // leaving the loop stops reading stdin
    }
  } catch (err) {
    throw readError('standard input', err);
  }
  return Buffer.concat(chunks).subarray(0, READ_CAP_BYTES);
}

/** Read (at most 10 MiB + 1 byte) and parse a torrent from a path, or stdin for '-'. */
export async function loadTorrent(pathOrDash: string): Promise<Metainfo> {
  const bytes = pathOrDash === '-' ? await readStdinCapped() : await readFileCapped(pathOrDash);
  const what = pathOrDash === '-' ? 'standard input' : sanitizeForTerminal(pathOrDash);
  // there, readable, and holding nothing: not bencode (exit 4), as any other bytes that are no torrent
  if (bytes.length === 0) throw new TtError('BENCODE', `${what}: empty${pathOrDash === '-' ? '' : ' file'}, not a torrent`);
  // said here, naming the input: parseTorrent only knows it as 'file'
  if (bytes.length > MAX_TORRENT_BYTES) throw new TtError('METAINFO', `${what}: larger than ${MAX_TORRENT_BYTES} bytes (10 MiB), the most a .torrent may be`);
  try {
    // a .torrent file: bytes after its dictionary are ignored, as libtorrent does
    return parseTorrent(bytes, { allowTrailingBytes: true });
  } catch (err) {
    if (err instanceof BencodeError) throw new TtError('BENCODE', `not a torrent file: ${sanitizeForTerminal(err.message)}`);
    // messages quote torrent-supplied names: keep bidi/C1 tricks off the terminal
    if (err instanceof TtError) err.message = sanitizeForTerminal(err.message);
    throw err;
  }
}

export function infoJson(meta: Metainfo): InfoJson {
  const numbers = new Map(numberedFiles(meta).map((fileIndex, k) => [fileIndex, k + 1]));
  return {
    name: meta.name,
    infoHash: meta.infoHashHex,
    totalLength: meta.totalLength,
    pieceLength: meta.pieceLength,
    pieceCount: meta.pieceCount,
    private: meta.private,
    multiFile: meta.multiFile,
    files: meta.files.map((f, i) => ({ number: numbers.get(i) ?? null, path: [...f.path], length: f.length, offset: f.offset, padding: f.padding })),
    trackers: meta.announceList.map((tier) => [...tier]),
    webSeeds: [...meta.urlList],
    createdBy: meta.createdBy ?? null,
    creationDate: meta.creationDate ?? null,
    comment: meta.comment ?? null,
    magnet: toMagnet(meta),
  };
}

/** JSON text safe to print raw: C1 controls, bidi and separators escaped as \uXXXX (still the same JSON). */
export function terminalSafeJson(value: unknown): string {
  return terminalSafeJsonText(JSON.stringify(value, null, 2));
}

function formatDate(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return Number.isNaN(d.getTime()) ? String(unixSeconds) : d.toISOString().replace('.000Z', 'Z');
}

function exactBytes(n: number): string {
  return `${humanBytes(n)} (${n} bytes)`;
}

/** The human-readable report; every string from the torrent is sanitized. */
export function formatInfo(meta: Metainfo, opts: InfoOptions = {}): string {
  const s = sanitizeForTerminal;
  const lines: string[] = [];
  const field = (label: string, value: string): void => {
    lines.push(`${`${label}:`.padEnd(13)}${value}`);
  };
  field('Name', s(meta.name));
  field('Info hash', meta.infoHashHex);
  // the files' bytes: BEP 47 padding is not something anyone downloads or stores
  const files = filesLength(meta);
  field('Total size', `${exactBytes(files)}${files < meta.totalLength ? `, plus ${exactBytes(meta.totalLength - files)} of padding in pieces` : ''}`);
  field('Pieces', `${meta.pieceCount} x ${exactBytes(meta.pieceLength)}`);
  field('Private', meta.private ? 'yes' : 'no');
  if (meta.createdBy !== undefined) field('Created by', s(meta.createdBy));
  if (meta.creationDate !== undefined) field('Created on', formatDate(meta.creationDate));
  if (meta.comment !== undefined) field('Comment', s(meta.comment));

  if (meta.announceList.length === 0) field('Trackers', 'none');
  else {
    lines.push('Trackers:');
    meta.announceList.forEach((tier, i) => {
      tier.forEach((url, j) => lines.push(`${j === 0 ? `  tier ${i + 1}: ` : ' '.repeat(10)}${s(url)}`));
    });
  }
  if (meta.urlList.length > 0) {
    lines.push('Web seeds:');
    for (const url of meta.urlList) lines.push(`  ${s(url)}`);
  }

  if (meta.multiFile) {
    const real = meta.files.filter((f) => !f.padding);
    const padCount = meta.files.length - real.length;
    lines.push(`Files (${real.length}${padCount > 0 ? `, plus ${padCount} padding` : ''}):`);
    // numbered as `tt download --select` takes them
    const shown = opts.files ? real : real.slice(0, DEFAULT_FILES_SHOWN);
    const width = String(real.length).length;
    shown.forEach((f, i) => lines.push(`  ${String(i + 1).padStart(width)}  ${humanBytes(f.length).padStart(11)}  ${s(f.path.join('/'))}`));
    if (shown.length < real.length) lines.push(`  ... and ${real.length - shown.length} more (use --files to list all)`);
  }
  field('Magnet', s(toMagnet(meta)));
  return `${lines.join('\n')}\n`;
}

/**
 * The `tt info` action: load, optionally scrape, then print. Scrape failures are
 * reported per tracker and never change the exit code: 0 once the torrent parsed.
 */
export async function runInfo(torrent: string, opts: InfoOptions): Promise<void> {
  const meta = await loadTorrent(torrent);
  const timeoutMs = opts.timeout !== undefined ? Math.max(1, Math.round(opts.timeout * 1000)) : DEFAULT_SCRAPE_TIMEOUT_MS;
  const scrape = opts.scrape ? await scrapeAll(meta, { timeoutMs }) : undefined;
  const notAsked = scrape ? trackerUrls(meta.announceList).length - scrape.length : 0;
  if (opts.json) {
    const doc = infoJson(meta);
    if (scrape) {
      doc.scrape = scrape;
      doc.scrapeNotAsked = notAsked;
    }
    process.stdout.write(`${terminalSafeJson(doc)}\n`);
  } else {
    process.stdout.write(formatInfo(meta, opts) + (scrape ? formatScrape(scrape, notAsked) : ''));
  }
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show what a torrent holds')
    .argument('<torrent>', "a .torrent file, or '-' to read it from standard input")
    .option('--json', 'print one JSON object (stable field names) instead of text')
    .option('--files', `list every file (by default the first ${DEFAULT_FILES_SHOWN})`)
    .option('--scrape', `ask the trackers (the first ${MAX_SCRAPED_TRACKERS}, ${SCRAPE_CONCURRENCY} at a time) for seeders, leechers and completed (failures are listed per tracker; exit code stays 0)`)
    .option('--timeout <duration>', `with --scrape: time each tracker gets (default ${DEFAULT_SCRAPE_TIMEOUT_MS / 1000}s)`, parseDuration)
    .action(async (torrent: string, opts: InfoOptions) => {
      await runInfo(torrent, opts);
    });
}
