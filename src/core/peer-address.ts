/**
 * A peer's network address, as trackers and listeners report it, and its
 * host:port text form (command line, magnet x.pe). Pure.
 */
import { isIP } from 'node:net';
import { unmapIpv4 } from './compact-peer.js';

export interface PeerAddress {
  /** IPv4 dotted quad or IPv6 text form (no brackets). */
  readonly host: string;
  readonly port: number;
  /** Present when the tracker's dictionary form gave one. */
  readonly peerId?: Buffer;
}

/**
 * `host:port`, `1.2.3.4:port` or `[v6]:port` -> address; undefined when it
 * is not one. A host that is no IP literal yet ends in a numeric label
 * (`127.1`, `2130706433`, `0x7f.1`: legacy spellings the resolver turns into
 * an IP, and no DNS name ends so) is refused: each spelling would count as
 * another address against the per-IP limits.
 */
export function parseHostPort(text: string): PeerAddress | undefined {
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text);
  const m = bracketed ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1]!;
  if (bracketed ? isIP(host) !== 6 : isIP(host) === 0 && /(^|\.)(\d+|0x[0-9a-f]*)\.?$/i.test(host)) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

function isLocalAddress(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === '0.0.0.0' || host === 'localhost';
}

/** `peers` without our own listening address (a tracker or the DHT hands us back to ourselves). */
export function withoutSelf(peers: readonly PeerAddress[], ownPort: number): PeerAddress[] {
  return peers.filter((p) => !(p.port === ownPort && isLocalAddress(p.host)));
}

/**
 * The address a per-IP limit counts by, one spelling per address: IPv6 in
 * its compressed lower-case form without a zone id, and an IPv4-mapped IPv6
 * address (`::ffff:1.2.3.4`, or `::ffff:102:304` as the URL parser and our
 * compact decoding spell it) as its IPv4 address. A hostname is itself (the
 * session counts it again by the address it connected to).
 */
export function ipOf(host: string): string {
  const zone = host.indexOf('%');
  const bare = zone >= 0 ? host.slice(0, zone) : host;
  if (isIP(bare) !== 6) return unmapIpv4(host).toLowerCase();
  const canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const hi = Number.parseInt(mapped[1]!, 16);
  const lo = Number.parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
