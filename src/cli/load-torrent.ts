/**
 * Reading a .torrent from a path or standard input ('-') for every command:
 * size-capped, with one-line errors (INPUT for unreadable, BENCODE/METAINFO
 * from parseTorrent for invalid).
 */
import { open } from 'node:fs/promises';
import { TtError, errorMessage } from '../core/errors.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { parseTorrent } from '../metainfo/parse-torrent.js';

export const MAX_TORRENT_BYTES = 10 * 1024 * 1024;

/** The raw bytes of a torrent file, or of stdin for '-'; refuses more than 10 MiB. */
export async function readTorrentBytes(path: string): Promise<Buffer> {
  if (path === '-') return readCapped(process.stdin, 'standard input');
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new TtError('INPUT', `cannot read ${path}: ${describeFsError(err)}`);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new TtError('INPUT', `cannot read ${path}: it is a directory`);
    if (info.size > MAX_TORRENT_BYTES) throw new TtError('INPUT', `${path} is larger than 10 MiB; not a torrent file`);
    return await readCapped(handle.createReadStream({ autoClose: false }), path);
  } catch (err) {
    if (err instanceof TtError) throw err;
    throw new TtError('INPUT', `cannot read ${path}: ${describeFsError(err)}`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

export async function loadTorrent(path: string): Promise<Metainfo> {
  return parseTorrent(await readTorrentBytes(path));
}

async function readCapped(stream: AsyncIterable<Buffer | string>, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    length += b.length;
    if (length > MAX_TORRENT_BYTES) throw new TtError('INPUT', `${what} is larger than 10 MiB; not a torrent file`);
    chunks.push(b);
  }
  return Buffer.concat(chunks, length);
}

export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOSPC':
      return 'disk full';
    case 'EROFS':
      return 'read-only file system';
    default:
      return errorMessage(err);
  }
}
