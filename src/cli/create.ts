/**
 * `tt create <path>`: make a .torrent of a file or folder (BEP 3; trackers as
 * BEP 12 tiers, BEP 27 private, BEP 19 web seeds), write it without ever
 * leaving half a file behind, and print its info hash and magnet link. The
 * hashing and the bencode are metainfo/create.ts; this file owns the options,
 * where the output goes and what is said about it. `-o -` writes the torrent
 * to standard output (never to a terminal: it is binary) and the summary to
 * stderr; an existing output is refused before hashing unless --force, and
 * --force replaces only a regular file (write-whole.ts).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { TtError } from '../core/errors.js';
import { CLIENT_VERSION } from '../core/ids.js';
import { filesLength } from '../metainfo/completion.js';
import { createTorrentFromPath } from '../metainfo/create.js';
import { toMagnet } from '../metainfo/magnet.js';
import { MAX_PIECE_LENGTH, parseTorrent, urlTextProblem } from '../metainfo/parse-torrent.js';
import { humanBytes, sanitizeForTerminal } from './format.js';
import { terminalSafeJson } from './info.js';
import { parseSize } from './units.js';
import { checkWritable, writeWhole } from './write-whole.js';

const TRACKER_SCHEMES = new Set(['http:', 'https:', 'udp:', 'wss:']);
const WEB_SEED_SCHEMES = new Set(['http:', 'https:']);
const MIN_PIECE_LENGTH = 16 * 1024;

interface CreateCliOptions {
  out?: string;
  tracker?: string[];
  webSeed?: string[];
  pieceLength?: number;
  private?: boolean;
  comment?: string;
  date: boolean;
  force?: boolean;
  json?: boolean;
}

function urlOption(schemes: Set<string>, what: string) {
  return (text: string, previous: string[] = []): string[] => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InvalidArgumentError(`'${text}' is not a URL`);
    }
    // the string is written as given, and the parser strips tabs and line breaks: the reader's own rule decides
    const problem = urlTextProblem(text);
    if (problem !== undefined) throw new InvalidArgumentError(`the ${what} URL ${problem}`);
    if (!schemes.has(url.protocol)) throw new InvalidArgumentError(`'${text}': a ${what} URL must start with ${[...schemes].map((s) => `${s}//`).join(', ')}`);
    if (url.username !== '' || url.password !== '') {
      throw new InvalidArgumentError(`the ${what} URL carries a user name or password: tt never sends them, and everyone given the torrent could read them`);
    }
    return [...previous, text];
  };
}

function pieceLengthOption(text: string): number {
  const n = parseSize(text);
  if (n < MIN_PIECE_LENGTH || n > MAX_PIECE_LENGTH || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError(`'${text}': a piece length is a power of two from 16KiB to 512MiB`);
  }
  return n;
}

/** True when `inner` is `outer` or lies below it, comparing the paths as written. */
function isInside(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * `path` (absolute) with every symbolic link in the part of it that exists
 * resolved: the real path of its deepest existing folder, the rest appended as
 * written. Nothing exists (or can be read): `path` itself.
 */
async function realPathOfExisting(path: string): Promise<string> {
  const rest: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    const real = await realpath(at).catch(() => undefined);
    if (real !== undefined) return join(real, ...rest);
    if (dirname(at) === at) return path;
    rest.unshift(basename(at));
  }
}

/**
 * True when writing `out` would put it inside `root` (or on it), by any route:
 * the paths as written, their real paths (a symbolic link to the folder, or to
 * a folder below it, as `out`'s parent), and the identity (device and inode) of
 * every existing folder above `out` (a bind mount of the folder). `out` itself
 * is not followed: a symbolic link there is refused by write-whole.ts anyway.
 */
async function outputInside(out: string, root: string): Promise<boolean> {
  if (isInside(out, root)) return true;
  const realRoot = await realPathOfExisting(root);
  const realOut = join(await realPathOfExisting(dirname(out)), basename(out));
  if (isInside(realOut, realRoot)) return true;
  const rootStat = await stat(realRoot).catch(() => undefined);
  if (rootStat === undefined || !rootStat.isDirectory()) return false;
  for (let at = dirname(realOut); ; at = dirname(at)) {
    const st = await stat(at).catch(() => undefined);
    if (st !== undefined && st.dev === rootStat.dev && st.ino === rootStat.ino) return true;
    if (dirname(at) === at) return false;
  }
}

export async function runCreate(source: string, opts: CreateCliOptions): Promise<void> {
  const root = resolve(source);
  const toStdout = opts.out === '-';
  const out = toStdout ? '-' : resolve(opts.out ?? `${basename(root)}.torrent`);
  if (toStdout) {
    if (opts.json) throw new TtError('USAGE', '-o - writes the torrent to standard output, so --json cannot: drop one of them');
    if (process.stdout.isTTY) throw new TtError('USAGE', '-o - writes the binary .torrent to standard output, which is a terminal: redirect it (> FILE) or pipe it');
  } else {
    if (await outputInside(out, root)) {
      throw new TtError('USAGE', `the .torrent would be written inside ${sanitizeForTerminal(root)}, the data it describes (give --out elsewhere)`);
    }
    if ((await stat(out).catch(() => undefined))?.isDirectory()) {
      throw new TtError('USAGE', `${sanitizeForTerminal(out)} is a folder: give the .torrent file's path with --out`);
    }
    // before hashing what may be a large folder: refused now rather than after
    if ((await checkWritable(out)) !== undefined && !opts.force) throw new TtError('USAGE', `${sanitizeForTerminal(out)} already exists (--force replaces it)`);
  }
  const trackers = opts.tracker ?? [];
  const bytes = await createTorrentFromPath(root, {
    ...(opts.pieceLength !== undefined ? { pieceLength: opts.pieceLength } : {}),
    ...(trackers.length > 0 ? { announce: trackers[0]!, announceList: trackers.map((t) => [t]) } : {}),
    ...(opts.private ? { private: true } : {}),
    ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
    ...(opts.webSeed && opts.webSeed.length > 0 ? { urlList: opts.webSeed } : {}),
    ...(opts.date ? { creationDate: Math.floor(Date.now() / 1000) } : {}),
    createdBy: `tt/${CLIENT_VERSION}`,
  });
  // what we wrote must be a torrent we (and so every strict client) accept
  const meta = parseTorrent(bytes);
  if (toStdout) {
    // a failed write (> /dev/full) is main's exit 6 and its one line; nothing may claim the torrent was created
    if (!(await writeToStdout(bytes))) return;
  } else await writeWhole(out, bytes, { force: opts.force === true, hint: '(--force replaces it)' });
  const summary = {
    path: out,
    name: meta.name,
    infoHash: meta.infoHashHex,
    totalLength: meta.totalLength,
    pieceLength: meta.pieceLength,
    pieceCount: meta.pieceCount,
    files: meta.files.length,
    private: meta.private,
    magnet: toMagnet(meta),
  };
  if (opts.json) {
    process.stdout.write(`${terminalSafeJson(summary)}\n`);
    return;
  }
  const fileCount = meta.files.filter((f) => !f.padding).length;
  const text =
    [
      `Created:     ${toStdout ? 'standard output' : sanitizeForTerminal(out)}`,
      `Name:        ${sanitizeForTerminal(meta.name)}`,
      `Info hash:   ${meta.infoHashHex}`,
      `Total size:  ${humanBytes(filesLength(meta))} in ${fileCount} file${fileCount === 1 ? '' : 's'}`,
      `Pieces:      ${meta.pieceCount} x ${humanBytes(meta.pieceLength)}`,
      `Trackers:    ${trackers.length > 0 ? trackers.map(sanitizeForTerminal).join(', ') : 'none (peers will need --peer or x.pe)'}`,
      `Magnet:      ${sanitizeForTerminal(summary.magnet)}`,
    ].join('\n') + '\n';
  // with -o -, stdout carries the torrent alone
  (toStdout ? process.stderr : process.stdout).write(text);
}

/** The torrent to standard output; false when it could not be written (main reports it). */
function writeToStdout(bytes: Buffer): Promise<boolean> {
  return new Promise((resolve) => process.stdout.write(bytes, (err) => resolve(err === null || err === undefined)));
}

export function registerCreate(program: Command): void {
  program
    .command('create <path>')
    .description('make a .torrent of a file or folder, and print its info hash and magnet link')
    .option('-o, --out <file>', "where to write the .torrent (default: <name>.torrent here; '-': standard output, the summary then goes to stderr)")
    .option('-t, --tracker <url>', 'announce URL (repeatable; each becomes its own tier, tried in order)', urlOption(TRACKER_SCHEMES, 'tracker'))
    .option('-w, --web-seed <url>', 'BEP 19 web seed URL (repeatable)', urlOption(WEB_SEED_SCHEMES, 'web seed'))
    .option('--piece-length <size>', 'bytes per piece, a power of two (default: about size/1500, 16KiB-16MiB)', pieceLengthOption)
    .option('--private', 'private torrent (BEP 27): peers only from its trackers')
    .option('-c, --comment <text>', 'comment stored in the torrent')
    .option('--no-date', 'leave out the creation date (the same input then gives the same bytes)')
    .option('-f, --force', 'replace the output file if it exists (only a regular file: never a device, FIFO, folder or symbolic link)')
    .option('--json', 'print one JSON object instead of text')
    .action(async (path: string, opts: CreateCliOptions) => runCreate(path, opts));
}
