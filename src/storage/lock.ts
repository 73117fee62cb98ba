/**
 * One download into a file or folder at a time: `.<id>.tt-lock` in the
 * output folder, where <id> is the SHA-1 of the torrent's top-level name
 * (the file or folder it writes, `<out>/<name>`), holds the pid of the tt
 * process writing there. A second `tt download` writing the same path (the
 * same torrent from an overlapping cron job, or another torrent of the same
 * name: a new build pushed while the old one still downloads) is refused,
 * naming the first; two writers there would each finish "complete" over
 * the other's bytes. A lock left by a process that is gone (killed, a crash,
 * a reboot) is taken over. Other names, or another folder, never wait, and
 * `tt seed` / `tt verify` (read-only) take no lock; neither does a download
 * into a folder where no file can be created (read-only, full). No BEP:
 * aria2c and Transmission get the same effect from their control file and
 * daemon.
 */
import { constants, existsSync, readFileSync } from 'node:fs';
import { link, lstat, readFile, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { TtError } from '../core/errors.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { toDiskError } from './disk-error.js';
import { mkdirp } from './mkdirp.js';
import { resolveInside } from './safe-path.js';

/** `.<SHA-1 of the top-level name, hex>.tt-lock`, beside the resume record. */
export function lockFileName(meta: Pick<Metainfo, 'name' | 'files'>): string {
  const name = meta.files[0]?.path[0] ?? meta.name; // what is written under <out>
  return `.${createHash('sha1').update(name, 'utf8').digest('hex')}.tt-lock`;
}

/** Whether a top-level name is some torrent's lock (never written as a torrent's file). */
export function isLockFileName(name: string): boolean {
  return /^\.[0-9a-f]{40}\.tt-lock$/.test(name);
}

/**
 * Whether process `pid` still runs and may be the tt that wrote a lock at
 * `lockedAt` (ms since the epoch). On Linux its command line must name node
 * or tt, and it must have started before the lock was written: a pid reused
 * after a reboot, by another program (a `sleep`, a shell) or by another node
 * process (an editor's language server), does not hold the lock forever.
 */
export function pidAlive(pid: number, lockedAt?: number): boolean {
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
  if (!/node|\btt\b|tt\.js|tt\.mjs/.test(cmdline)) return false;
  const started = lockedAt === undefined ? undefined : processStartMs(pid);
  // a second's slack: the boot time and start ticks are coarse
  return started === undefined || started <= lockedAt! + 1_000;
}

/** When process `pid` started (ms since the epoch), from /proc: undefined when unknown. */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the fields after the command name (in parentheses, which may itself hold spaces and parentheses)
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22, starttime, in clock ticks since boot
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))?.[1];
    if (!Number.isFinite(ticks) || btime === undefined) return undefined;
    return Number(btime) * 1000 + (ticks / CLOCK_TICKS_PER_S) * 1000;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

const noLock = (): Promise<void> => Promise.resolve();

/** What a lock file holds: 'none' (no file), 'junk' (not a pid), or the pid as text. */
async function lockKey(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, { encoding: 'latin1', flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'junk';
  }
  return /^(\d{1,10})\n?$/.exec(text.slice(0, 16))?.[1] ?? 'junk';
}

/** A takeover guard older than this was left by a run killed during its takeover (which takes milliseconds). */
const GUARD_STALE_MS = 5_000;
/** How long a start may wait on other starters' takeovers before it says so. */
const TAKEOVER_WAIT_MS = GUARD_STALE_MS + 2_000;

/**
 * Take the lock of `meta` in `root` (created if missing), or throw
 * TtError('USAGE') naming the tt that holds it. Resolves to its release.
 */
export async function acquireDownloadLock(
  root: string,
  meta: Pick<Metainfo, 'name' | 'files'>,
  alive: (pid: number, lockedAt?: number) => boolean = pidAlive,
): Promise<() => Promise<void>> {
  const file = await resolveInside(root, [lockFileName(meta)]);
  const target = join(root, meta.files[0]?.path[0] ?? meta.name);
  // the pid goes into a file of our own first, then link() gives it the lock's name: the lock is
  // never seen empty (another starter would take an empty one for junk and remove it)
  const mine = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  try {
    for (let attempt = 0; attempt < 8 && Date.now() < deadline; attempt++) {
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
      const held = await lockKey(file);
      const lockedAt = (await lstat(file).catch(() => undefined))?.mtimeMs;
      // this process's own (a session that was never closed), a dead one's or junk: taken over
      if (/^\d/.test(held) && Number(held) !== process.pid && alive(Number(held), lockedAt)) throw heldBy(Number(held), target);
      if (!(await removeIfStill(file, held))) attempt--; // another starter is taking it over: look again shortly
    }
    throw new TtError('USAGE', `cannot take the lock ${file}: other runs keep taking it`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/**
 * Removes the lock `file` only if it still holds `held`: of two runs starting
 * at once over a dead run's lock, the first takes it over and the second,
 * acting on what it read before, must not then remove the first's fresh lock
 * and take it too. Whoever removes a lock holding `held` first creates
 * `<lock>.<held>.takeover` (O_EXCL: it fails for all but one), then looks again:
 * nobody else can change a lock holding `held` meanwhile. False when another
 * run has that guard (after a short wait, so the caller looks again).
 */
async function removeIfStill(file: string, held: string): Promise<boolean> {
  if (held === 'none') return true;
  const guard = `${file}.${held}.takeover`;
  try {
    // made now (its age tells a guard left by a killed run), exclusively (O_EXCL: one run gets it)
    await writeFile(guard, '', { flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toDiskError('write', guard, err);
    const made = (await lstat(guard).catch(() => undefined))?.mtimeMs;
    // a guard left by a run killed during its takeover: old, so removed
    if (made !== undefined && Date.now() - made > GUARD_STALE_MS) await unlink(guard).catch(() => undefined);
    else await sleep(25);
    return false;
  }
  try {
    if ((await lockKey(file)) === held) {
      await unlink(file).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toDiskError('write', file, err);
      });
    }
    return true;
  } finally {
    // once the lock no longer holds `held`, a later holder of this guard finds that and leaves it
    await unlink(guard).catch(() => undefined);
  }
}

function heldBy(pid: number, target: string): TtError {
  return new TtError('USAGE', `another tt (pid ${pid}) is downloading into ${target}; let it finish or stop it first`);
}
