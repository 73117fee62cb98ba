/**
 * BEP 19 web seeds ("GetRight style" url-list): which URL holds each file of a
 * torrent, and which HTTP byte ranges a run of torrent bytes becomes. A URL
 * ending in '/' is a folder: the torrent's name (and, for a multi-file
 * torrent, the file's path) is appended, each component percent-encoded; a
 * single-file torrent may also name its file directly. Pure.
 */
import { fileAt, type Metainfo } from '../metainfo/metainfo.js';

/** One HTTP range request: bytes [start, end] (inclusive, as in a Range header) of the file at `url`. */
export interface RangeRequest {
  url: string;
  fileIndex: number;
  start: number;
  end: number;
  /** Where these bytes go in the torrent's concatenated data. */
  torrentOffset: number;
}

/** A web seed URL tt will fetch from: http or https with a host; undefined for anything else. */
export function usableWebSeed(url: string): URL | undefined {
  const checked = checkWebSeed(url);
  return 'base' in checked ? checked.base : undefined;
}

/**
 * `url` as a web seed: its base URL (fragment dropped), or why tt will not
 * use it, in words for a user. The reason never repeats credentials.
 */
export function checkWebSeed(url: string): { base: URL } | { problem: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { problem: 'not a URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { problem: `${parsed.protocol.slice(0, -1)}: is not http or https` };
  if (parsed.hostname === '') return { problem: 'no host' };
  // no credentials from a .torrent: tt would send them to whatever the URL names
  if (parsed.username !== '' || parsed.password !== '') return { problem: 'it carries a user name or password, which tt never sends' };
  parsed.hash = '';
  return { base: parsed };
}

/** The URL of file `fileIndex` under web seed `base` (BEP 19). */
export function fileUrl(base: URL, meta: Metainfo, fileIndex: number): string {
  const file = meta.files[fileIndex]!;
  if (!meta.multiFile && !base.pathname.endsWith('/')) return base.href;
  const folder = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
  const url = new URL(base.href);
  // [name] or [name, ...path] as the torrent spells it (not as written on disk), each a validated plain component
  url.pathname = folder + (file.torrentPath ?? file.path).map((c) => encodeURIComponent(c)).join('/');
  return url.href;
}

/**
 * The range requests that fetch torrent bytes [offset, offset + length) from
 * `base`: one per file the run crosses, padding files (BEP 47, zeros) and
 * empty files left out.
 */
export function rangesFor(base: URL, meta: Metainfo, offset: number, length: number): RangeRequest[] {
  const out: RangeRequest[] = [];
  const end = offset + length;
  const files = meta.files;
  for (let fileIndex = fileAt(files, offset); fileIndex < files.length && files[fileIndex]!.offset < end; fileIndex++) {
    const file = files[fileIndex]!;
    if (file.length === 0 || file.padding) continue;
    const from = Math.max(offset, file.offset);
    const to = Math.min(end, file.offset + file.length);
    if (from >= to) continue;
    out.push({ url: fileUrl(base, meta, fileIndex), fileIndex, start: from - file.offset, end: to - file.offset - 1, torrentOffset: from });
  }
  return out;
}
