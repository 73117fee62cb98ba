/**
 * `tt verify <torrent> --dir DIR`: hash the data under DIR against the
 * torrent and say what matches, file by file, without touching the network or
 * writing anything (transmission-cli --verify, aria2c --check-integrity,
 * qBittorrent's "Force recheck"). For a team that pushed a build with tt: is
 * /opt/build exactly what build.torrent says? Exit 0 when every (selected)
 * piece verifies and every (selected) file is the torrent's size (no piece
 * covers bytes past a file's end, nor a zero-length file: only its size
 * tells), 7 (INCOMPLETE) otherwise, with the files that do not;
 * 3 when the torrent's data is not under DIR at all (data-folder.ts).
 * Every piece is hashed: resume records are not consulted. Ctrl-C, SIGTERM,
 * SIGHUP or a dead stdout stop the hashing (stop.ts).
 */
import type { Command } from 'commander';
import { lstat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TtError } from '../core/errors.js';
import { bytesIn, fileCompletion, hiddenByPiece } from '../metainfo/completion.js';
import { numberedFiles, selectFiles, type FileNumberRanges } from '../metainfo/selection.js';
import { checkExisting } from '../storage/check.js';
import { forEachLimit } from '../storage/for-each-limit.js';
import { resolveAllInside, resolveInside } from '../storage/safe-path.js';
import { statMany } from '../storage/small-files.js';
import { humanBytes, sanitizeForTerminal } from './format.js';
import { requireData } from './data-folder.js';
import { DEFAULT_FILES_SHOWN, loadTorrent } from './info.js';
import { Reporter, chooseMode } from './reporter.js';
import { parseFileList } from './units.js';
import { onStop, type StopCause, stopError } from './stop.js';

interface VerifyOptions {
  dir: string;
  select?: FileNumberRanges;
  files?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function registerVerify(program: Command): void {
  program
    .command('verify <torrent>')
    .description("hash the data in DIR against the torrent and list the files that do not match (reads only; exit 0 when all match, 7 when not)")
    .option('-d, --dir <dir>', "folder that holds the torrent's files (as --out for download)", '.')
    .option('-s, --select <files>', 'verify only these files: numbers as tt info lists them, e.g. 2 or 1,4-6', parseFileList)
    .option('--files', `list every file that does not match, not only the first ${DEFAULT_FILES_SHOWN}`)
    .option('--json', 'newline-delimited JSON events on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (torrent: string, opts: VerifyOptions) => runVerify(torrent, opts));
}

async function runVerify(torrent: string, opts: VerifyOptions): Promise<void> {
  const meta = await loadTorrent(torrent);
  const selection = opts.select ? selectFiles(meta, opts.select) : undefined;
  const reporter = new Reporter(chooseMode(opts));
  const root = resolve(opts.dir);
  // no data at all: exit 3, as tt seed; 7 is for data that is there and does not match
  await requireData(root, meta);
  const started = Date.now();
  const abort = new AbortController();
  let stopCause: StopCause | undefined;
  const removeStop = onStop((cause) => {
    stopCause = cause;
    abort.abort();
  });
  let have;
  try {
    reporter.info(`verifying ${meta.name} in ${root}`);
    have = await checkExisting(root, meta, {
      signal: abort.signal,
      selection,
      onProgress: (p) => reporter.checking(p.checked, p.total),
    });
  } catch (err) {
    reporter.close();
    if (err instanceof TtError && err.code === 'INTERRUPTED' && stopCause !== undefined) throw stopError(stopCause, ' while verifying; nothing written');
    throw err;
  } finally {
    removeStop();
  }
  reporter.endChecking();
  const seconds = (Date.now() - started) / 1000;

  const wanted = selection?.wanted;
  const pieces = wanted ? wanted.count : meta.pieceCount;
  let verified = 0;
  for (const i of have.indices()) if (!wanted || wanted.has(i)) verified++;
  const completion = fileCompletion(meta, have);
  const numbered = numberedFiles(meta);
  const checkedFiles = numbered
    .map((fileIndex, k) => ({ number: k + 1, fileIndex }))
    .filter(({ fileIndex }) => !selection || selection.isSelected(fileIndex));
  // no piece covers the bytes past a file's length (nor any byte of a zero-length file): its size tells
  const sizes = await sizesOnDisk(root, checkedFiles.map(({ fileIndex }) => meta.files[fileIndex]!.path));
  const files = checkedFiles.map(({ number, fileIndex }, k) => {
    const c = completion[fileIndex]!;
    const f = meta.files[fileIndex]!;
    const size = sizes[k]!;
    const present = c.length > 0 ? c.verifiedBytes > 0 : size !== null;
    return { file: number, path: f.path.join('/'), length: c.length, size, verifiedBytes: c.verifiedBytes, present };
  });
  const bad = files.filter((f) => f.verifiedBytes < f.length || !f.present || (f.size !== null && f.size !== f.length));
  const complete = verified === pieces && bad.length === 0;

  reporter.event('checked', { have: verified, pieceCount: pieces });
  const what = selection ? `${files.length} selected of ${numbered.length} files` : `${files.length} file${files.length === 1 ? '' : 's'}`;
  const line = complete
    ? `${meta.name}: all ${pieces} pieces verified (${humanBytes((selection?.wantedBytes ?? meta.totalLength) - bytesIn(hiddenByPiece(meta, selection), wanted))}, ${what}) in ${seconds.toFixed(1)} s`
    : `${meta.name}: ${verified} of ${pieces} pieces verified (${pieces === 0 ? 100 : ((100 * verified) / pieces).toFixed(1)}%); ${bad.length} of ${what} do not match`;
  reporter.summary(line, { complete, have: verified, pieceCount: pieces, seconds, files });
  if (!complete && reporter.mode !== 'json' && reporter.mode !== 'quiet') {
    const shown = opts.files ? bad : bad.slice(0, DEFAULT_FILES_SHOWN);
    const width = String(numbered.length).length;
    const rows = shown.map((f) => {
      const state = f.length > 0 ? `${((100 * f.verifiedBytes) / f.length).toFixed(1).padStart(5)}% verified` : f.size === null ? 'missing' : 'not empty';
      const sized = f.size === null || f.size === f.length ? '' : `: ${f.size} bytes, the torrent says ${f.length}`;
      return `  ${String(f.file).padStart(width)}  ${state}  ${sanitizeForTerminal(f.path)}${sized}`;
    });
    if (shown.length < bad.length) rows.push(`  ... and ${bad.length - shown.length} more (--files lists them all)`);
    if (rows.length > 0) process.stdout.write(`${rows.join('\n')}\n`);
  }
  if (!complete) {
    const missing = pieces - verified;
    const sized = bad.filter((f) => f.size !== null && f.size !== f.length).length;
    const absent = bad.filter((f) => f.length === 0 && f.size === null).length;
    const why = [
      missing > 0 ? `${missing} of ${pieces} pieces missing or not matching` : undefined,
      sized > 0 ? `${sized} file${sized === 1 ? '' : 's'} not the torrent's size` : undefined,
      missing === 0 && absent > 0 ? `${absent} empty file${absent === 1 ? '' : 's'} missing` : undefined,
    ]
      .filter((w) => w !== undefined)
      .join('; ') || `${bad.length} of ${what} do not match`;
    throw new TtError('INCOMPLETE', `${why} in ${sanitizeForTerminal(root)}`);
  }
}

/** lstat calls in flight while sizing a many-file torrent's files. */
const STAT_PARALLEL = 32;

/**
 * Each of the torrent's files `paths` under `root`: its size when it is a
 * regular file there (resolved as storage does: never through a symlink
 * out), null when it is missing or anything else.
 */
async function sizesOnDisk(root: string, paths: readonly (readonly string[])[]): Promise<(number | null)[]> {
  const sizes = new Array<number | null>(paths.length).fill(null);
  let resolved: string[];
  try {
    resolved = await resolveAllInside(root, paths);
  } catch {
    // some path is not one storage would use (a symlink planted since the check): each on its own
    resolved = await Promise.all(paths.map((components) => resolveInside(root, components).catch(() => '')));
  }
  // many files: lstat'ed on a worker in one message; what it could not, one by one here
  const batch = await statMany(resolved);
  await forEachLimit(resolved, STAT_PARALLEL, async (file, k) => {
    if (file === '') return;
    const st = batch.at(k);
    if (st !== undefined) {
      if (st.isFile) sizes[k] = Number(st.size);
      return;
    }
    try {
      const st = await lstat(file);
      if (st.isFile()) sizes[k] = st.size;
    } catch {
      // missing (or unreadable): null
    }
  });
  return sizes;
}
