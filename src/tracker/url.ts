/**
 * Tracker URLs (BEP 3, BEP 48): the announce and scrape query strings with binary
 * values percent-encoded byte by byte (URLSearchParams would UTF-8-encode them),
 * the /announce -> /scrape rule, and a strict byte-level query parser for our server.
 * Pure: no I/O.
 */
import type { AnnounceParams } from './types.js';

const HEX = '0123456789ABCDEF';

/** True for RFC 3986 unreserved bytes, which are sent as themselves. */
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) || // 0-9
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e // - . _ ~
  );
}

/** Percent-encode every byte that is not unreserved, e.g. 0x00 -> "%00", 0xff -> "%FF". */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  return out;
}

/** Append `query` to a URL that may already have one (private trackers' passkeys); drops a #fragment. */
function appendQuery(base: string, query: string): string {
  const hash = base.indexOf('#');
  const url = hash === -1 ? base : base.slice(0, hash);
  if (url.endsWith('?') || url.endsWith('&')) return url + query;
  return url + (url.includes('?') ? '&' : '?') + query;
}

/** A non-negative integer as a decimal string (negative or fractional input is clamped). */
function count(n: number): string {
  return String(Number.isFinite(n) && n > 0 ? Math.trunc(n) : 0);
}

/** The full HTTP announce URL for `p` (BEP 3 with compact=1 per BEP 23). */
export function buildAnnounceUrl(announce: string, p: AnnounceParams): string {
  const parts = [
    `info_hash=${percentEncodeBytes(p.infoHash)}`,
    `peer_id=${percentEncodeBytes(p.peerId)}`,
    `port=${count(p.port)}`,
    `uploaded=${count(p.uploaded)}`,
    `downloaded=${count(p.downloaded)}`,
    `left=${count(p.left)}`,
    'compact=1',
    'no_peer_id=1',
  ];
  if (p.event !== undefined) parts.push(`event=${p.event}`);
  if (p.numwant !== undefined) parts.push(`numwant=${count(p.numwant)}`);
  parts.push(`key=${(p.key >>> 0).toString(16).padStart(8, '0')}`);
  if (p.trackerId !== undefined) parts.push(`trackerid=${percentEncodeBytes(Buffer.from(p.trackerId, 'latin1'))}`);
  return appendQuery(announce, parts.join('&'));
}

/**
 * BEP 48: the scrape URL is the announce URL with the last path component
 * "announce..." replaced by "scrape..."; undefined when the tracker has no scrape
 * convention. UDP trackers scrape over the same URL (BEP 15), so it is returned as is.
 */
export function scrapeUrlFor(announce: string): string | undefined {
  if (/^udp:\/\//i.test(announce)) return announce;
  const queryAt = announce.search(/[?#]/);
  const path = queryAt === -1 ? announce : announce.slice(0, queryAt);
  const rest = queryAt === -1 ? '' : announce.slice(queryAt);
  const slash = path.lastIndexOf('/');
  if (slash === -1 || !path.slice(slash + 1).startsWith('announce')) return undefined;
  // the slash must be in the path, not the '//' after the scheme
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]+\//i.test(path.slice(0, slash + 1))) return undefined;
  return `${path.slice(0, slash + 1)}scrape${path.slice(slash + 1 + 'announce'.length)}${rest}`;
}

/** The HTTP scrape URL for one info hash. */
export function buildScrapeUrl(scrapeUrl: string, infoHash: Buffer): string {
  return appendQuery(scrapeUrl, `info_hash=${percentEncodeBytes(infoHash)}`);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** Decode a percent-encoded query component to raw bytes ('+' is a space); undefined on a bad escape. */
export function percentDecodeBytes(s: string): Buffer | undefined {
  const out = Buffer.alloc(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else if (c === 0x2b) {
      out[n++] = 0x20;
    } else if (c > 0x7e || c < 0x20) {
      return undefined;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/**
 * Parse a raw query string (without '?') into name -> list of raw byte values.
 * Strict and bounded: at most `maxParams` parameters; undefined on a malformed one.
 */
export function parseQueryBytes(query: string, maxParams = 64): Map<string, Buffer[]> | undefined {
  const params = new Map<string, Buffer[]>();
  if (query === '') return params;
  const pairs = query.split('&');
  if (pairs.length > maxParams) return undefined;
  for (const pair of pairs) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = percentDecodeBytes(eq === -1 ? pair : pair.slice(0, eq));
    const value = percentDecodeBytes(eq === -1 ? '' : pair.slice(eq + 1));
    if (name === undefined || value === undefined) return undefined;
    const key = name.toString('latin1');
    const list = params.get(key);
    if (list) list.push(value);
    else params.set(key, [value]);
  }
  return params;
}
