/**
 * UDP tracker packets (BEP 15), both directions: requests the client sends and
 * the server parses, replies the server sends and the client parses. Decoders
 * return undefined for short or garbled packets (they are ignored, not fatal).
 * Pure: no sockets.
 */
import type { PeerAddress } from '../core/peer-address.js';
import { parseCompactPeers, type IpFamily } from './compact.js';
import type { AnnounceEvent, AnnounceParams, ScrapeResult } from './types.js';

/** The magic connection id of a connect request. */
export const UDP_PROTOCOL_ID = 0x41727101980n;
export const ACTION_CONNECT = 0;
export const ACTION_ANNOUNCE = 1;
export const ACTION_SCRAPE = 2;
export const ACTION_ERROR = 3;
export const CONNECT_REQUEST_BYTES = 16;
export const CONNECT_REPLY_BYTES = 16;
export const ANNOUNCE_REQUEST_BYTES = 98;
export const ANNOUNCE_REPLY_HEADER_BYTES = 20;
export const SCRAPE_REQUEST_HEADER_BYTES = 16;
export const SCRAPE_REPLY_ENTRY_BYTES = 12;
/** BEP 15: about 74 info hashes fit in one scrape packet. */
export const MAX_SCRAPE_HASHES = 74;

const EVENT_CODES: Readonly<Record<AnnounceEvent | 'none', number>> = { none: 0, completed: 1, started: 2, stopped: 3 };
const EVENT_NAMES: readonly (AnnounceEvent | undefined)[] = [undefined, 'completed', 'started', 'stopped'];

function u64(n: number): bigint {
  return BigInt(Number.isFinite(n) && n > 0 ? Math.trunc(n) : 0);
}

function readU64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64BE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

// ------------------------------------------------------------------ client -> tracker

/** connect: <protocol_id u64><action=0 u32><transaction_id u32> */
export function encodeConnectRequest(transactionId: number): Buffer {
  const b = Buffer.alloc(CONNECT_REQUEST_BYTES);
  b.writeBigUInt64BE(UDP_PROTOCOL_ID, 0);
  b.writeUInt32BE(ACTION_CONNECT, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  return b;
}

/**
 * announce: <connection_id u64><action=1><transaction_id><info_hash 20><peer_id 20>
 * <downloaded u64><left u64><uploaded u64><event u32><ip u32=0><key u32><num_want i32><port u16>
 */
export function encodeAnnounceRequest(connectionId: Buffer, transactionId: number, p: AnnounceParams): Buffer {
  const b = Buffer.alloc(ANNOUNCE_REQUEST_BYTES);
  connectionId.copy(b, 0, 0, 8);
  b.writeUInt32BE(ACTION_ANNOUNCE, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  p.infoHash.copy(b, 16, 0, 20);
  p.peerId.copy(b, 36, 0, 20);
  b.writeBigUInt64BE(u64(p.downloaded), 56);
  b.writeBigUInt64BE(u64(p.left), 64);
  b.writeBigUInt64BE(u64(p.uploaded), 72);
  b.writeUInt32BE(EVENT_CODES[p.event ?? 'none'], 80);
  b.writeUInt32BE(0, 84); // ip: 0 = the packet's source address
  b.writeUInt32BE(p.key >>> 0, 88);
  b.writeInt32BE(p.numwant === undefined ? -1 : Math.max(0, Math.min(0x7fffffff, Math.trunc(p.numwant))), 92);
  b.writeUInt16BE(p.port & 0xffff, 96);
  return b;
}

/** scrape: <connection_id u64><action=2><transaction_id><info_hash 20>... */
export function encodeScrapeRequest(connectionId: Buffer, transactionId: number, infoHashes: readonly Buffer[]): Buffer {
  const hashes = infoHashes.slice(0, MAX_SCRAPE_HASHES);
  const b = Buffer.alloc(SCRAPE_REQUEST_HEADER_BYTES + 20 * hashes.length);
  connectionId.copy(b, 0, 0, 8);
  b.writeUInt32BE(ACTION_SCRAPE, 8);
  b.writeUInt32BE(transactionId >>> 0, 12);
  hashes.forEach((h, i) => h.copy(b, SCRAPE_REQUEST_HEADER_BYTES + 20 * i, 0, 20));
  return b;
}

// ------------------------------------------------------------------ tracker -> client

export type UdpReply =
  | { action: 'connect'; transactionId: number; connectionId: Buffer }
  | {
      action: 'announce';
      transactionId: number;
      interval: number;
      leechers: number;
      seeders: number;
      peers: PeerAddress[];
    }
  | { action: 'scrape'; transactionId: number; files: ScrapeResult[] }
  | { action: 'error'; transactionId: number; message: string };

/**
 * Decode a tracker's reply. Announce entries are 6 bytes on an IPv4 socket and 18
 * on an IPv6 one (`family`); a trailing partial entry is ignored. Undefined for a
 * packet too short for its action or with an unknown action.
 */
export function decodeUdpReply(buf: Buffer, family: IpFamily): UdpReply | undefined {
  if (buf.length < 8) return undefined;
  const action = buf.readUInt32BE(0);
  const transactionId = buf.readUInt32BE(4);
  switch (action) {
    case ACTION_CONNECT:
      if (buf.length < CONNECT_REPLY_BYTES) return undefined;
      return { action: 'connect', transactionId, connectionId: Buffer.from(buf.subarray(8, 16)) };
    case ACTION_ANNOUNCE:
      if (buf.length < ANNOUNCE_REPLY_HEADER_BYTES) return undefined;
      return {
        action: 'announce',
        transactionId,
        interval: buf.readUInt32BE(8),
        leechers: buf.readUInt32BE(12),
        seeders: buf.readUInt32BE(16),
        peers: parseCompactPeers(buf.subarray(ANNOUNCE_REPLY_HEADER_BYTES), family),
      };
    case ACTION_SCRAPE: {
      const files: ScrapeResult[] = [];
      for (let at = 8; at + SCRAPE_REPLY_ENTRY_BYTES <= buf.length; at += SCRAPE_REPLY_ENTRY_BYTES) {
        files.push({ complete: buf.readUInt32BE(at), downloaded: buf.readUInt32BE(at + 4), incomplete: buf.readUInt32BE(at + 8) });
      }
      return { action: 'scrape', transactionId, files };
    }
    case ACTION_ERROR:
      return { action: 'error', transactionId, message: buf.subarray(8).toString('utf8') };
    default:
      return undefined;
  }
}

// ------------------------------------------------------------------ server side

export type UdpRequest =
  | { action: 'connect'; transactionId: number }
  | {
      action: 'announce';
      connectionId: Buffer;
      transactionId: number;
      infoHash: Buffer;
      peerId: Buffer;
      downloaded: number;
      left: number;
      uploaded: number;
      event: AnnounceEvent | undefined;
      key: number;
      /** -1 = tracker's default. */
      numwant: number;
      port: number;
    }
  | { action: 'scrape'; connectionId: Buffer; transactionId: number; infoHashes: Buffer[] };

/** Decode a client's request; undefined for anything malformed (wrong size, bad protocol id, unknown event). */
export function decodeUdpRequest(buf: Buffer): UdpRequest | undefined {
  if (buf.length < 16) return undefined;
  const action = buf.readUInt32BE(8);
  const transactionId = buf.readUInt32BE(12);
  if (action === ACTION_CONNECT) {
    if (buf.readBigUInt64BE(0) !== UDP_PROTOCOL_ID) return undefined;
    return { action: 'connect', transactionId };
  }
  const connectionId = Buffer.from(buf.subarray(0, 8));
  if (action === ACTION_ANNOUNCE) {
    // BEP 41 may append options after byte 98; they are ignored
    if (buf.length < ANNOUNCE_REQUEST_BYTES) return undefined;
    const eventCode = buf.readUInt32BE(80);
    if (eventCode >= EVENT_NAMES.length) return undefined;
    return {
      action: 'announce',
      connectionId,
      transactionId,
      infoHash: Buffer.from(buf.subarray(16, 36)),
      peerId: Buffer.from(buf.subarray(36, 56)),
      downloaded: readU64(buf, 56),
      left: readU64(buf, 64),
      uploaded: readU64(buf, 72),
      event: EVENT_NAMES[eventCode],
      key: buf.readUInt32BE(88),
      numwant: buf.readInt32BE(92),
      port: buf.readUInt16BE(96),
    };
  }
  if (action === ACTION_SCRAPE) {
    const count = (buf.length - SCRAPE_REQUEST_HEADER_BYTES) / 20;
    if (!Number.isInteger(count) || count < 1 || count > MAX_SCRAPE_HASHES) return undefined;
    const infoHashes: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const at = SCRAPE_REQUEST_HEADER_BYTES + 20 * i;
      infoHashes.push(Buffer.from(buf.subarray(at, at + 20)));
    }
    return { action: 'scrape', connectionId, transactionId, infoHashes };
  }
  return undefined;
}

export function encodeConnectReply(transactionId: number, connectionId: Buffer): Buffer {
  const b = Buffer.alloc(CONNECT_REPLY_BYTES);
  b.writeUInt32BE(ACTION_CONNECT, 0);
  b.writeUInt32BE(transactionId >>> 0, 4);
  connectionId.copy(b, 8, 0, 8);
  return b;
}

/** announce reply: <action=1><transaction_id><interval><leechers><seeders><compact peers...> */
export function encodeAnnounceReply(
  transactionId: number,
  r: { interval: number; leechers: number; seeders: number; compactPeers: Buffer },
): Buffer {
  const head = Buffer.alloc(ANNOUNCE_REPLY_HEADER_BYTES);
  head.writeUInt32BE(ACTION_ANNOUNCE, 0);
  head.writeUInt32BE(transactionId >>> 0, 4);
  head.writeUInt32BE(r.interval >>> 0, 8);
  head.writeUInt32BE(r.leechers >>> 0, 12);
  head.writeUInt32BE(r.seeders >>> 0, 16);
  return Buffer.concat([head, r.compactPeers]);
}

/** scrape reply: <action=2><transaction_id> then <seeders><completed><leechers> per hash */
export function encodeScrapeReply(transactionId: number, files: readonly ScrapeResult[]): Buffer {
  const b = Buffer.alloc(8 + SCRAPE_REPLY_ENTRY_BYTES * files.length);
  b.writeUInt32BE(ACTION_SCRAPE, 0);
  b.writeUInt32BE(transactionId >>> 0, 4);
  files.forEach((f, i) => {
    const at = 8 + SCRAPE_REPLY_ENTRY_BYTES * i;
    b.writeUInt32BE(f.complete >>> 0, at);
    b.writeUInt32BE(f.downloaded >>> 0, at + 4);
    b.writeUInt32BE(f.incomplete >>> 0, at + 8);
  });
  return b;
}

/** error: <action=3><transaction_id><message> */
export function encodeErrorReply(transactionId: number, message: string): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(ACTION_ERROR, 0);
  head.writeUInt32BE(transactionId >>> 0, 4);
  return Buffer.concat([head, Buffer.from(message, 'utf8')]);
}
