/**
 * Why a command stops before its goal, in one place: Ctrl-C (SIGINT),
 * SIGTERM, SIGHUP (the terminal was closed, or `kill -HUP`), or standard
 * output going away under it (`tt download --json | head -1`: EPIPE) or
 * failing (`> /dev/full`: ENOSPC). Each phase that can stop gracefully (a
 * download or seed session, a magnet's metadata fetch, verify's hashing, the
 * tracker) registers with onStop() and is told the cause once; the error it
 * then throws says what happened (stopError):
 *
 * | cause | message | exit |
 * | SIGINT, SIGTERM | `interrupted by SIGTERM; ...` | 130 |
 * | SIGHUP | `interrupted by SIGHUP (terminal hangup); ...` | killed by SIGHUP (129) |
 * | stdout closed by its reader (EPIPE) | `stopped: standard output was closed...` | 130 |
 * | stdout cannot be written (ENOSPC, EIO...) | `cannot write to standard output: ENOSPC...` | 6 |
 *
 * After SIGHUP, once the command is over (the same graceful stop as for
 * Ctrl-C: `stopped` announced, resume record written), tt ends by SIGHUP
 * itself, as a shell expects of a hung-up job (endIfHungUp). It has to: when
 * the terminal is really gone, Node 20 aborts (SIGABRT, a core) on a normal
 * exit, because resetting the terminal's modes fails with EIO
 * (nodejs/node#51519, fixed in later Node lines by nodejs/node#58200); a
 * process ended by a signal skips that.
 *
 * The signal handlers are installed as soon as main.ts knows the command is
 * one that stops gracefully (download, seed, verify, tracker: listenForStop),
 * else with the first registration, and they stay: once a stop is under way,
 * a second SIGINT exits at once (130) and a second SIGTERM or SIGHUP is
 * ignored (a closed terminal can send SIGHUP twice: from the kernel and from
 * the shell), so the bounded graceful stop (`stopped` announce, resume
 * record) is not cut short. A cause arriving before the first phase or
 * between two phases is kept and given to the next phase that registers.
 * Otherwise (`tt create`, `tt info`) signals keep their default action.
 * Only this module and main.ts touch process signals or stdout errors.
 */
import { TtError } from '../core/errors.js';

/** The signals that stop tt gracefully. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

export type StopCause =
  | { readonly kind: 'signal'; readonly signal: StopSignal }
  /** EPIPE: whoever read stdout went away (`| head -1`). */
  | { readonly kind: 'output-closed' }
  /** Any other write error on stdout: the output is lost (ENOSPC on /dev/full, EIO...). */
  | { readonly kind: 'output-failed'; readonly code: string };

type Handler = (cause: StopCause) => void;

const handlers = new Set<Handler>();
/** The first cause: being delivered, delivered (a stop under way), or waiting for the next phase. */
let current: StopCause | undefined;
/** The first failure of stdout, whatever else happened (main's exit code). */
let outputCause: StopCause | undefined;
let signalsInstalled = false;
/** A SIGHUP arrived at some point (the terminal may be gone). */
let hungUp = false;

function deliver(cause: StopCause): void {
  for (const h of [...handlers]) {
    handlers.delete(h);
    h(cause);
  }
}

function onSignal(signal: StopSignal): void {
  if (signal === 'SIGHUP') hungUp = true;
  if (current === undefined) {
    current = { kind: 'signal', signal };
    deliver(current);
    return;
  }
  // a stop is under way (or waiting for its phase): a second Ctrl-C means now
  if (signal === 'SIGINT') process.exit(130);
}

/**
 * Handle SIGINT, SIGTERM and SIGHUP from now on (idempotent): main.ts calls it
 * once it knows the command stops gracefully, so a signal while the torrent
 * is still being loaded is the same graceful stop as one a moment later
 * (exit 130 and one line), not death by the signal.
 */
export function listenForStop(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const signal of STOP_SIGNALS) process.on(signal, () => onSignal(signal));
}

/**
 * Call `handler` once with the cause of a stop (at once, on the next
 * microtask, when one is already known). Returns the function that
 * unregisters it (call it when the phase ends, stopped or not).
 */
export function onStop(handler: Handler): () => void {
  listenForStop();
  let live = true;
  const once: Handler = (cause) => {
    if (!live) return;
    live = false;
    handler(cause);
  };
  if (current !== undefined) {
    const cause = current;
    queueMicrotask(() => once(cause));
  } else handlers.add(once);
  return () => {
    live = false;
    handlers.delete(once);
  };
}

/** The stop cause of an error emitted by process.stdout. */
export function outputStopCause(err: NodeJS.ErrnoException): StopCause {
  // ERR_STREAM_DESTROYED: a write after the stream was torn down by an earlier EPIPE
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return { kind: 'output-closed' };
  return { kind: 'output-failed', code: err.code ?? 'write failed' };
}

/**
 * stdout failed: remembered for the exit code, and the running phase (if any)
 * is stopped. Only the first failure counts; later ones (every write to a
 * dead stream fails) are ignored.
 */
export function outputFailed(cause: StopCause): void {
  if (outputCause !== undefined) return;
  outputCause = cause;
  if (current !== undefined) return;
  current = cause;
  deliver(cause);
}

/** The first stdout failure, if any. */
export function outputFailure(): StopCause | undefined {
  return outputCause;
}

const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EBADF: 'not open for writing',
  EFBIG: 'file too large',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
};

/** `cannot write to standard output: ENOSPC (no space left on device)` */
export function outputFailedText(code: string): string {
  const words = ERRNO_WORDS[code];
  return `cannot write to standard output: ${code}${words ? ` (${words})` : ''}`;
}

/**
 * The error a phase throws when it stopped for `cause`; `tail` says what
 * became of the work, e.g. `; 12 of 40 pieces verified and kept` or
 * ` while verifying; nothing written`.
 */
export function stopError(cause: StopCause, tail: string): TtError {
  switch (cause.kind) {
    case 'signal':
      return new TtError('INTERRUPTED', `interrupted by ${cause.signal}${cause.signal === 'SIGHUP' ? ' (terminal hangup)' : ''}${tail}`);
    case 'output-closed':
      return new TtError('INTERRUPTED', `stopped: standard output was closed (its reader went away)${tail}`);
    case 'output-failed':
      return new TtError('DISK', `${outputFailedText(cause.code)}; stopped${tail}`);
  }
}

/**
 * At the very end of the command: after a SIGHUP, end by SIGHUP (its default
 * action, status 129) instead of exiting normally; see the module comment.
 */
export function endIfHungUp(): void {
  if (!hungUp) return;
  process.removeAllListeners('SIGHUP'); // back to the default action
  process.kill(process.pid, 'SIGHUP');
}
