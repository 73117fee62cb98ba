/**
 * One download of a torrent into a folder at a time: `.<info-hash>.tt-lock`
 * in the output folder holds the pid of the tt process writing there. A
 * second `tt download` of the same torrent into the same folder (a cron job
 * overlapping the last run) is refused, naming the first; a lock left by a
 * process that is gone (killed, a crash) is taken over. Different torrents,
 * or the same torrent into another folder, never wait for each other, and
 * `tt seed` / `tt verify` (read-only) take no lock; neither does a download
 * into a folder where no file can be created (read-only, full). No BEP: aria2c and
 * Transmission get the same effect from their control file and daemon.
 */
import { constants, existsSync, readFileSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { TtError } from '../core/errors.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { toDiskError } from './disk-error.js';
import { mkdirp } from './mkdirp.js';
import { resolveInside } from './safe-path.js';

/** `.<info-hash hex>.tt-lock`, beside the resume record. */
export function lockFileName(meta: Metainfo): string {
  return `.${meta.infoHashHex}.tt-lock`;
}

/** Whether a top-level name is some torrent's lock (never written as a torrent's file). */
export function isLockFileName(name: string): boolean {
  return /^\.[0-9a-f]{40}\.tt-lock$/.test(name);
}

/**
 * Whether process `pid` still runs and may be a tt: on Linux its command
 * line must name node or tt, so a pid reused by another program after a
 * reboot (a `sleep`, a shell) does not hold the lock forever.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return true; // no /proc (not Linux), or not ours to read: alive is all we know
  }
  return /node|\btt\b|tt\.js|tt\.mjs/.test(cmdline);
}

const noLock = (): Promise<void> => Promise.resolve();

/** The pid in a lock file, when it holds one. */
async function holderOf(file: string): Promise<number | undefined> {
  const text = await readFile(file, { encoding: 'latin1', flag: constants.O_RDONLY | constants.O_NOFOLLOW }).catch(() => '');
  const pid = /^(\d{1,10})\n?$/.exec(text.slice(0, 16))?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/**
 * Take the lock of `meta` in `root` (created if missing), or throw
 * TtError('USAGE') naming the tt that holds it. Resolves to its release.
 */
export async function acquireDownloadLock(root: string, meta: Metainfo, alive: (pid: number) => boolean = pidAlive): Promise<() => Promise<void>> {
  const file = await resolveInside(root, [lockFileName(meta)]);
  // the pid goes into a file of our own first, then link() gives it the lock's name: the lock is
  // never seen empty (another starter would take an empty one for garbage and remove it)
  const mine = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (attempt === 0 || !existsSync(mine)) await writeFile(mine, `${process.pid}\n`, { flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode: 0o644 });
        await link(mine, file);
        return () => unlink(file).catch(() => undefined);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt === 0) {
          // no folder yet: made now (a failure is left for the files' creation to report, naming them)
          if (await mkdirp(root).then(() => true, () => false)) continue;
          return noLock;
        }
        // a folder tt cannot add a file to (read-only, full): no lock, as nothing new can be created there
        // either; a complete folder of read-only files is still re-run and seeded (README)
        if (code !== 'EEXIST') return noLock;
      }
      const holder = await holderOf(file);
      // this process's own (a session that was never closed) or a dead one's: taken over
      if (holder !== undefined && holder !== process.pid && alive(holder)) {
        throw new TtError('USAGE', `another tt (pid ${holder}) is downloading this torrent into ${root}; let it finish or stop it first`);
      }
      await unlink(file).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toDiskError('write', file, err);
      });
    }
    throw new TtError('USAGE', `cannot take the lock ${file}: another tt keeps taking it`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
