/**
 * Compact peer entries, both ways: 6-byte IPv4 (BEP 23, and BEP 5's DHT
 * values and node addresses) and 18-byte IPv6 (BEP 7). Shared by the
 * trackers and the DHT. Pure.
 */
import { isIP } from 'node:net';
import type { PeerAddress } from './peer-address.js';

export const COMPACT_IPV4_BYTES = 6;
export const COMPACT_IPV6_BYTES = 18;

export type IpFamily = 4 | 6;

export function compactEntrySize(family: IpFamily): number {
  return family === 4 ? COMPACT_IPV4_BYTES : COMPACT_IPV6_BYTES;
}

function ipv6Text(b: Uint8Array, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[at + i]! << 8) | b[at + i + 1]!).toString(16));
  // let the URL parser produce the canonical compressed form ("::1")
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/**
 * Decode compact entries of `family`. A trailing partial entry (length not a
 * multiple of 6 / 18) is ignored rather than failing the whole reply, as
 * libtorrent does; the complete entries before it are still good.
 */
export function parseCompactPeers(bytes: Uint8Array, family: IpFamily): PeerAddress[] {
  const size = compactEntrySize(family);
  const peers: PeerAddress[] = [];
  const whole = bytes.length - (bytes.length % size);
  for (let at = 0; at < whole; at += size) {
    const host =
      family === 4 ? `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}` : ipv6Text(bytes, at);
    const port = (bytes[at + size - 2]! << 8) | bytes[at + size - 1]!;
    peers.push({ host, port });
  }
  return peers;
}

/** Normalise "::ffff:1.2.3.4" to "1.2.3.4"; other addresses unchanged. */
export function unmapIpv4(host: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return m ? m[1]! : host;
}

/** One compact entry for an IP literal, or undefined when `host` is not an IP of `family`. */
export function encodeCompactPeer(host: string, port: number, family: IpFamily): Buffer | undefined {
  const ip = unmapIpv4(host);
  if (isIP(ip) !== family) return undefined;
  const out = Buffer.alloc(compactEntrySize(family));
  if (family === 4) {
    const parts = ip.split('.').map(Number);
    for (let i = 0; i < 4; i++) out[i] = parts[i]!;
  } else {
    const full = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    const [head = '', tail = ''] = full.includes('::') ? full.split('::') : [full, ''];
    const h = head === '' ? [] : head.split(':');
    const t = tail === '' ? [] : tail.split(':');
    const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  }
  out.writeUInt16BE(port, out.length - 2);
  return out;
}

/**
 * A peer address worth dialing when another peer names it: an IP literal
 * (IPv4-mapped IPv6 unmapped), not unspecified, 0.x, multicast or broadcast,
 * with a port in 1..65535.
 */
export function isUsablePeerAddress(host: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  const ip = unmapIpv4(host);
  const family = isIP(ip);
  if (family === 4) {
    const first = Number(ip.slice(0, ip.indexOf('.')));
    return first !== 0 && first < 224;
  }
  if (family === 6) return ip !== '::' && !/^ff/i.test(ip);
  return false;
}
