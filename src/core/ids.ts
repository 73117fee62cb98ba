/**
 * Peer ids (Azureus style, BEP 20) and info-hash helpers. Pure.
 */
import { randomBytes } from 'node:crypto';

export const CLIENT_VERSION = '0.1.0';
/** Azureus-style prefix: '-' + client code 'TT' + 4 version digits + '-'. */
export const PEER_ID_PREFIX = '-TT0001-';

/** 20-byte peer id: the prefix then 12 random alphanumeric bytes. */
export function generatePeerId(): Buffer {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const random = randomBytes(12);
  let tail = '';
  for (const b of random) tail += alphabet[b % alphabet.length];
  return Buffer.from(PEER_ID_PREFIX + tail, 'latin1');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A peer is its address and port: many peers share one IP on loopback. */
export function peerKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
