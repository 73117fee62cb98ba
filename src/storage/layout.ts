/**
 * Maps the torrent's concatenated byte space (BEP 3: files laid end to end in
 * info order) onto per-file spans. Pure; binary search over file offsets.
 */
import { fileAt, type TorrentFile } from '../metainfo/metainfo.js';

/** One contiguous run inside a single file. */
export interface FileSpan {
  fileIndex: number;
  fileOffset: number;
  length: number;
}

/**
 * The file spans covering torrent bytes [offset, offset + length), in order.
 * Zero-length files are skipped. Throws RangeError when the range falls
 * outside the torrent.
 */
export function spansFor(files: readonly TorrentFile[], offset: number, length: number): FileSpan[] {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`bad byte range ${offset}+${length}`);
  }
  const last = files[files.length - 1];
  const total = last ? last.offset + last.length : 0;
  if (offset + length > total) throw new RangeError(`byte range ${offset}+${length} past end ${total}`);
  const spans: FileSpan[] = [];
  if (length === 0) return spans;
  let i = fileAt(files, offset);
  let pos = offset;
  let remaining = length;
  while (remaining > 0 && i < files.length) {
    const file = files[i]!;
    const fileOffset = pos - file.offset;
    const take = Math.min(remaining, file.length - fileOffset);
    if (take > 0) {
      spans.push({ fileIndex: i, fileOffset, length: take });
      pos += take;
      remaining -= take;
    }
    i++;
  }
  return spans;
}

