/**
 * Typed errors for all of tt, ranked by blast radius (ARCHITECTURE.md #7).
 * Owns the error codes and their process exit codes; does not print anything
 * (only src/cli/ talks to the terminal).
 */

/** What kind of failure this is; each maps to one documented exit code. */
export type ErrorCode =
  | 'USAGE' // bad command-line usage
  | 'INPUT' // an input file cannot be read
  | 'BENCODE' // bytes are not valid (strict) bencode
  | 'METAINFO' // bencode is fine but it is not a valid torrent
  | 'PROTOCOL' // a peer broke the wire protocol (closes that peer only)
  | 'TRACKER' // a tracker failed or refused (a warning while another works; fatal only when every tracker refused)
  | 'NO_PEERS' // no usable peer within the allowed time / every tracker failed
  | 'DISK' // storage failed (ENOSPC, EACCES, EROFS...)
  | 'INCOMPLETE' // data is missing or does not verify (e.g. seeding a partial copy)
  | 'INTERRUPTED' // stopped by a signal
  | 'INTERNAL';

/** Process exit code for each error code. Documented in README "Exit codes". */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  USAGE: 2,
  INPUT: 3,
  BENCODE: 4,
  METAINFO: 4,
  NO_PEERS: 5,
  DISK: 6,
  INCOMPLETE: 7,
  TRACKER: 8,
  PROTOCOL: 1, // never fatal to the process: closes one peer; 1 only if it ever escaped
  INTERRUPTED: 130,
  INTERNAL: 1,
};

export class TtError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TtError';
  }
}

/** Malformed bencode: carries the byte offset where decoding stopped. */
export class BencodeError extends TtError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super('BENCODE', `${message} at byte ${offset}`);
    this.offset = offset;
    this.name = 'BencodeError';
  }
}

/** A structurally valid bencode document that is not a valid torrent; names the field. */
export class MetainfoError extends TtError {
  readonly field: string;
  constructor(field: string, message: string) {
    // a magnet link is no torrent (yet): its fields are magnet, magnet.xt, ...
    super('METAINFO', `${field === 'magnet' || field.startsWith('magnet.') ? 'invalid magnet link' : 'invalid torrent'}: ${field}: ${message}`);
    this.field = field;
    this.name = 'MetainfoError';
  }
}

/** A peer violated the protocol; the connection is closed with this reason. */
export class ProtocolError extends TtError {
  constructor(message: string) {
    super('PROTOCOL', message);
    this.name = 'ProtocolError';
  }
}

/** Storage-level failure; stops the torrent, keeps verified pieces. */
export class DiskError extends TtError {
  readonly syscallCode: string | undefined;
  constructor(message: string, cause?: unknown) {
    super('DISK', message, { cause });
    this.name = 'DiskError';
    this.syscallCode = (cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** A tracker-level failure (HTTP error, failure reason, timeout, garbage). */
export class TrackerError extends TtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRACKER', message, options);
    this.name = 'TrackerError';
  }
}

/** What a failed system call's code means, as strerror(3) says it (lower case). */
const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EEXIST: 'file exists',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in system',
  EFBIG: 'file too large',
  EIO: 'input/output error',
  EBUSY: 'device or resource busy',
  ETXTBSY: 'text file busy',
  EXDEV: 'invalid cross-device link',
  EINVAL: 'invalid argument',
  EBADF: 'bad file descriptor',
  ESTALE: 'stale file handle',
};

/**
 * Why a file operation failed, in words ('no such file or directory'), for
 * messages people read: never a bare ENOENT. A code without words here is
 * given as is; an error without a code gives `fallback`.
 */
export function errnoReason(err: unknown, fallback = 'failed'): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return fallback;
  return ERRNO_WORDS[code] ?? code;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
