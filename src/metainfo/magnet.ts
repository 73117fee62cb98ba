/**
 * Magnet links (BEP 9 "magnet URI format"): build one from a Metainfo, and parse
 * xt=urn:btih (40 hex or 32 base32 characters), dn, tr, ws (BEP 19 web seeds,
 * used once the metadata is in) and x.pe (peer addresses; malformed ones are
 * skipped). v2 (btmh) is not handled.
 * Errors are MetainfoError naming the magnet parameter.
 */
import { MetainfoError } from '../core/errors.js';
import { parseHostPort, type PeerAddress } from '../core/peer-address.js';
import type { Metainfo } from './metainfo.js';

export interface MagnetLink {
  readonly infoHash: Buffer;
  readonly name?: string;
  readonly trackers: string[];
  /** x.pe: peers to dial directly (at most MAX_MAGNET_PEERS). */
  readonly peers: PeerAddress[];
  /** ws: web seeds (at most MAX_MAGNET_WEB_SEEDS). */
  readonly webSeeds: string[];
}

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
  if (!uri.toLowerCase().startsWith(MAGNET_PREFIX)) throw new MetainfoError('magnet', "does not start with 'magnet:?'");
  let infoHash: Buffer | undefined;
  let name: string | undefined;
  const trackers: string[] = [];
  const peers: PeerAddress[] = [];
  const webSeeds: string[] = [];
  for (const param of uri.slice(MAGNET_PREFIX.length).split('&')) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const key = param.slice(0, eq).toLowerCase().replace(/\.\d+$/, ''); // xt.1, tr.2 ...
    const raw = param.slice(eq + 1);
    if (key === 'xt') {
      const xt = decodeComponent(key, raw);
      if (infoHash === undefined && xt.toLowerCase().startsWith(BTIH_PREFIX)) infoHash = parseBtih(xt);
    } else if (key === 'dn') {
      name = decodeComponent(key, raw.replace(/\+/g, ' '));
    } else if (key === 'tr') {
      const tr = decodeComponent(key, raw);
      if (tr.length > 0 && !trackers.includes(tr)) trackers.push(tr);
    } else if (key === 'ws') {
      const ws = decodeComponent(key, raw);
      if (ws.length > 0 && !webSeeds.includes(ws) && webSeeds.length < MAX_MAGNET_WEB_SEEDS) webSeeds.push(ws);
    } else if (key === 'x.pe') {
      const peer = parseHostPort(decodeComponent(key, raw));
      if (peer && peers.length < MAX_MAGNET_PEERS) peers.push(peer);
    }
  }
  if (infoHash === undefined) throw new MetainfoError('magnet.xt', 'no urn:btih info hash');
  return name === undefined ? { infoHash, trackers, peers, webSeeds } : { infoHash, name, trackers, peers, webSeeds };
}
