/**
 * Turns a raw fs failure into a DiskError that names the file and the reason
 * in words (ENOSPC -> "disk full", EACCES/EROFS -> "not writable"), so no raw
 * stack ever reaches the user. Pure.
 */
import { DiskError } from '../core/errors.js';

export type DiskOp = 'open' | 'create' | 'read' | 'write' | 'check' | 'close';

const REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'not writable (read-only file system)',
  ENOENT: 'missing',
  ENOTDIR: 'a parent folder is a file',
  EISDIR: 'is a folder, expected a file',
  ELOOP: 'is a symbolic link (refused)',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EFBIG: 'file too large for this file system',
  EIO: 'input/output error',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'name too long',
};

/** A DiskError for `op` on `file`, with a reason a user can act on. */
export function toDiskError(op: DiskOp, file: string, err: unknown): DiskError {
  if (err instanceof DiskError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let reason: string;
  if (code === 'EACCES' || code === 'EPERM') reason = op === 'read' || op === 'check' ? 'not readable (permission denied)' : 'not writable (permission denied)';
  else if (code !== undefined && REASONS[code] !== undefined) reason = REASONS[code];
  else reason = err instanceof Error ? err.message : String(err);
  const verb = op === 'check' ? 'read' : op;
  return new DiskError(`cannot ${verb} ${JSON.stringify(file)}: ${reason}${code ? ` (${code})` : ''}`, err);
}
