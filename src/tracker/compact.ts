/**
 * The filter every tracker peer list goes through (port 0, unspecified
 * addresses, duplicates, a cap), and the compact codec (core/compact-peer.ts)
 * re-exported for the tracker modules. Pure.
 */
import { isIP } from 'node:net';
import { unmapIpv4 } from '../core/compact-peer.js';
import { peerKey } from '../core/ids.js';
import type { PeerAddress } from '../core/peer-address.js';

export {
  COMPACT_IPV4_BYTES,
  COMPACT_IPV6_BYTES,
  compactEntrySize,
  encodeCompactPeer,
  parseCompactPeers,
  unmapIpv4,
  type IpFamily,
} from '../core/compact-peer.js';

/** Most peers kept from one reply; the rest are dropped. */
export const MAX_PEERS_PER_REPLY = 2000;

function isUsableHost(host: string): boolean {
  const family = isIP(host);
  if (family === 0) return false; // DNS names are not resolved on a tracker's say-so
  return host !== '0.0.0.0' && host !== '::' && !host.startsWith('255.');
}

/** Drop port 0, unspecified/broadcast and non-IP hosts, and duplicates; keep at most `cap`. */
export function filterPeers(peers: Iterable<PeerAddress>, cap = MAX_PEERS_PER_REPLY): PeerAddress[] {
  const seen = new Set<string>();
  const out: PeerAddress[] = [];
  for (const p of peers) {
    if (out.length >= cap) break;
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) continue;
    const host = unmapIpv4(p.host);
    if (!isUsableHost(host)) continue;
    const key = peerKey(host, p.port);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(host === p.host ? p : { ...p, host });
  }
  return out;
}
