/**
 * A peer's network address, as trackers and listeners report it, and its
 * host:port text form (command line, magnet x.pe). Pure.
 */
import { unmapIpv4 } from './compact-peer.js';

export interface PeerAddress {
  /** IPv4 dotted quad or IPv6 text form (no brackets). */
  readonly host: string;
  readonly port: number;
  /** Present when the tracker's dictionary form gave one. */
  readonly peerId?: Buffer;
}

/** `host:port`, `1.2.3.4:port` or `[v6]:port` -> address; undefined when it is not one. */
export function parseHostPort(text: string): PeerAddress | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

function isLocalAddress(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === '0.0.0.0' || host === 'localhost';
}

/** `peers` without our own listening address (a tracker or the DHT hands us back to ourselves). */
export function withoutSelf(peers: readonly PeerAddress[], ownPort: number): PeerAddress[] {
  return peers.filter((p) => !(p.port === ownPort && isLocalAddress(p.host)));
}

/**
 * The address a per-IP limit counts by: an IPv4-mapped IPv6 address
 * (`::ffff:1.2.3.4`, how a dual-stack socket reports an IPv4 peer) is its
 * IPv4 address, and IPv6 text is compared in lower case.
 */
export function ipOf(host: string): string {
  return unmapIpv4(host).toLowerCase();
}
