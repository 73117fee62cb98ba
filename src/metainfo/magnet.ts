/**
 * Magnet links (BEP 9 "magnet URI format"): build one from a Metainfo, and parse
 * xt=urn:btih (40 hex or 32 base32 characters; two different ones are
 * refused), dn, tr, ws (BEP 19 web seeds, used once the metadata is in), x.pe
 * (peer addresses; malformed ones are skipped, and kept to be named) and so
 * (BEP 53 select-only file indices, turned into a FileSelection once the
 * metadata is in). v2 (btmh) is not handled: a link with only btmh is refused.
 * Anything that starts with `magnet:` is read as a magnet link.
 * Errors are MetainfoError naming the magnet parameter.
 */
import { MetainfoError, TtError } from '../core/errors.js';
import { parseHostPort, type PeerAddress } from '../core/peer-address.js';
import type { Metainfo } from './metainfo.js';
import { FileSelection } from './selection.js';

export interface MagnetLink {
  readonly infoHash: Buffer;
  readonly name?: string;
  readonly trackers: string[];
  /** x.pe: peers to dial directly (at most MAX_MAGNET_PEERS). */
  readonly peers: PeerAddress[];
  /** ws: web seeds (at most MAX_MAGNET_WEB_SEEDS). */
  readonly webSeeds: string[];
  /** x.pe values that are no host:port (the first MAX_NAMED_BAD_PEERS, decoded): skipped, to be named in a warning. */
  readonly badPeers?: string[];
  /** so (BEP 53): inclusive ranges of 0-based indices into the torrent's file list, padding files counted. */
  readonly selectOnly?: (readonly [number, number])[];
}

/** Most malformed x.pe values kept to be named. */
export const MAX_NAMED_BAD_PEERS = 5;

/** Most ws web seeds taken from one magnet link. */
export const MAX_MAGNET_WEB_SEEDS = 16;

/** Most x.pe peers taken from one magnet link. */
export const MAX_MAGNET_PEERS = 200;

const MAGNET_PREFIX = 'magnet:?';
/** Longest magnet URI we look at (a magnet with hundreds of trackers is still far below). */
export const MAX_MAGNET_CHARS = 64 * 1024;
const BTIH_PREFIX = 'urn:btih:';
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<url>...` with every tracker once, in tier order. */
export function toMagnet(meta: Metainfo): string {
  const parts = [`xt=${BTIH_PREFIX}${meta.infoHashHex}`, `dn=${encodeURIComponent(meta.name)}`];
  const trackers = new Set(meta.announceList.flat());
  if (meta.announce !== undefined) trackers.add(meta.announce);
  for (const tr of trackers) parts.push(`tr=${encodeURIComponent(tr)}`);
  // as many web seeds as parseMagnet takes back: a link tt prints is one tt reads
  for (const ws of [...new Set(meta.urlList)].slice(0, MAX_MAGNET_WEB_SEEDS)) parts.push(`ws=${encodeURIComponent(ws)}`);
  return MAGNET_PREFIX + parts.join('&');
}

function base32Decode(s: string): Buffer | undefined {
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of s.toUpperCase()) {
    const v = BASE32_ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function parseBtih(xt: string): Buffer {
  const hash = xt.slice(BTIH_PREFIX.length);
  if (/^[0-9a-fA-F]{40}$/.test(hash)) return Buffer.from(hash, 'hex');
  if (hash.length === 32) {
    const decoded = base32Decode(hash);
    if (decoded !== undefined && decoded.length === 20) return decoded;
  }
  throw new MetainfoError('magnet.xt', 'btih must be 40 hex or 32 base32 characters');
}

/** BEP 53 `so=0,2,4-6`: file indices counted from 0, dashes for inclusive ranges. */
function parseSelectOnly(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (const item of text.split(',')) {
    const m = /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(item);
    if (!m) throw new MetainfoError('magnet.so', `'${item.slice(0, 40)}' is not a file index or a range like 4-6 (BEP 53)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new MetainfoError('magnet.so', `'${item}' is an empty range`);
    ranges.push([from, to]);
  }
  return ranges;
}

function decodeComponent(key: string, v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    throw new MetainfoError(`magnet.${key}`, 'bad percent-encoding');
  }
}

/** Parse a magnet URI. Throws MetainfoError when it is not a usable BitTorrent magnet. */
export function parseMagnet(uri: string): MagnetLink {
  if (uri.length > MAX_MAGNET_CHARS) throw new MetainfoError('magnet', `longer than ${MAX_MAGNET_CHARS} characters`);
  if (!uri.toLowerCase().startsWith(MAGNET_PREFIX)) {
    const why = /^magnet:$/i.test(uri)
      ? 'empty: a magnet link is magnet:?xt=urn:btih:<info hash>&...'
      : /^magnet:/i.test(uri)
        ? `'${uri.slice(0, 10)}...' is not how a magnet link starts: it is magnet:?xt=urn:btih:<info hash>&...`
        : "does not start with 'magnet:?'";
    throw new MetainfoError('magnet', why);
  }
  let infoHash: Buffer | undefined;
  let v2Only = false;
  let name: string | undefined;
  const trackers: string[] = [];
  const peers: PeerAddress[] = [];
  const badPeers: string[] = [];
  const webSeeds: string[] = [];
  const selectOnly: [number, number][] = [];
  for (const param of uri.slice(MAGNET_PREFIX.length).split('&')) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const key = param.slice(0, eq).toLowerCase().replace(/\.\d+$/, ''); // xt.1, tr.2 ...
    const raw = param.slice(eq + 1);
    if (key === 'xt') {
      const xt = decodeComponent(key, raw);
      if (xt.toLowerCase().startsWith(BTIH_PREFIX)) {
        const hash = parseBtih(xt);
        // the same hash twice (hex and base32, say) is one torrent; two are a link that cannot say which it means
        if (infoHash !== undefined && !infoHash.equals(hash)) {
          throw new MetainfoError('magnet.xt', `two different info hashes (${infoHash.toString('hex')} and ${hash.toString('hex')}): which torrent is meant?`);
        }
        infoHash = hash;
      } else if (xt.toLowerCase().startsWith('urn:btmh:')) v2Only = true;
    } else if (key === 'dn') {
      name = decodeComponent(key, raw.replace(/\+/g, ' '));
    } else if (key === 'tr') {
      const tr = decodeComponent(key, raw);
      if (tr.length > 0 && !trackers.includes(tr)) trackers.push(tr);
    } else if (key === 'ws') {
      const ws = decodeComponent(key, raw);
      if (ws.length > 0 && !webSeeds.includes(ws) && webSeeds.length < MAX_MAGNET_WEB_SEEDS) webSeeds.push(ws);
    } else if (key === 'x.pe') {
      const text = decodeComponent(key, raw);
      const peer = parseHostPort(text);
      if (peer === undefined) {
        if (badPeers.length < MAX_NAMED_BAD_PEERS) badPeers.push(text.slice(0, 100));
      } else if (peers.length < MAX_MAGNET_PEERS) peers.push(peer);
    } else if (key === 'so') {
      const so = decodeComponent(key, raw);
      if (so.length > 0) selectOnly.push(...parseSelectOnly(so));
    }
  }
  if (infoHash === undefined) {
    if (v2Only) throw new MetainfoError('magnet.xt', 'a v2-only link (urn:btmh): tt reads v1 links (urn:btih) only, so it cannot fetch this torrent');
    throw new MetainfoError('magnet.xt', 'no urn:btih info hash');
  }
  return {
    infoHash,
    ...(name === undefined ? {} : { name }),
    trackers,
    peers,
    webSeeds,
    ...(badPeers.length > 0 ? { badPeers } : {}),
    ...(selectOnly.length > 0 ? { selectOnly } : {}),
  };
}

/**
 * The files a link's so= selects (BEP 53: indices into the info dictionary's
 * file list, counted from 0, BEP 47 padding files included, as libtorrent
 * reads them), as the FileSelection `--select` would give. An index the
 * torrent does not have is a usage error (as a --select number it does not
 * have); padding files named are left out.
 */
export function selectOnlyFiles(meta: Metainfo, ranges: readonly (readonly [number, number])[]): FileSelection {
  const count = meta.files.length;
  const selected = new Array<boolean>(count).fill(false);
  for (const [from, to] of ranges) {
    if (to >= count) {
      const bad = from >= count ? from : to;
      throw new TtError(
        'USAGE',
        `the magnet link's so= names file index ${bad}, but ${meta.name} has ${count} file${count === 1 ? '' : 's'} (so= counts from 0, padding files included): give --select to choose files yourself`,
      );
    }
    for (let i = from; i <= to; i++) selected[i] = true;
  }
  const selection = new FileSelection(meta, selected);
  if (selection.selectedCount === 0) throw new TtError('USAGE', "the magnet link's so= names only padding files: give --select to choose files yourself");
  return selection;
}
