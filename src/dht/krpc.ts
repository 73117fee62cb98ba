/**
 * KRPC, the DHT's message format (BEP 5): bencoded dicts over UDP, queries
 * (ping, find_node, get_peers, announce_peer), responses and errors, and the
 * compact node (26 bytes) and peer (6 bytes) entries they carry. Sans-I/O and
 * strict: a datagram is parsed into a validated value or rejected with a
 * reason; nothing untrusted reaches the rest of the DHT unchecked. IPv4 only
 * (BEP 32's nodes6 is ignored). Knows nothing of sockets or routing.
 */
import { isIP } from 'node:net';
import { encodeCompactPeer as encodeCompact, parseCompactPeers } from '../core/compact-peer.js';
import { decode, encode, isBytes, isDict, isInt, isList, type BDict, type BValue } from '../metainfo/bencode.js';

export const NODE_ID_BYTES = 20;
export const COMPACT_NODE_BYTES = 26;
export const COMPACT_PEER_BYTES = 6;
/** Largest datagram read as KRPC; real ones are under 1.5 KB (a full get_peers reply ~ 1.3 KB). */
export const MAX_KRPC_BYTES = 8192;
/** Most `values` (peers) kept from one get_peers reply. */
export const MAX_VALUES_PER_REPLY = 200;
/** Longest transaction id and token accepted (libtorrent sends 2 and 4-8 bytes). */
export const MAX_TRANSACTION_BYTES = 16;
export const MAX_TOKEN_BYTES = 64;

/** KRPC error codes (BEP 5). */
export const KRPC_ERROR = { generic: 201, server: 202, protocol: 203, methodUnknown: 204 } as const;

export interface CompactNode {
  readonly id: Buffer;
  readonly host: string;
  readonly port: number;
}

export interface DhtPeer {
  readonly host: string;
  readonly port: number;
}

export type KrpcQuery =
  | { readonly q: 'ping'; readonly id: Buffer }
  | { readonly q: 'find_node'; readonly id: Buffer; readonly target: Buffer }
  | { readonly q: 'get_peers'; readonly id: Buffer; readonly infoHash: Buffer }
  | {
      readonly q: 'announce_peer';
      readonly id: Buffer;
      readonly infoHash: Buffer;
      readonly port: number;
      readonly impliedPort: boolean;
      readonly token: Buffer;
    };

/** The fields a response may carry; which are present depends on the query it answers. */
export interface KrpcResponseBody {
  readonly id: Buffer;
  readonly nodes?: CompactNode[];
  readonly values?: DhtPeer[];
  readonly token?: Buffer;
}

export type KrpcMessage =
  | { readonly y: 'q'; readonly t: Buffer; readonly query: KrpcQuery; readonly readOnly: boolean }
  | { readonly y: 'r'; readonly t: Buffer; readonly response: KrpcResponseBody }
  | { readonly y: 'e'; readonly t: Buffer; readonly code: number; readonly message: string }
  /** A query of a method we do not know: answered with error 204 (its id is still valid). */
  | { readonly y: 'unknown-method'; readonly t: Buffer; readonly method: string };

export class KrpcError extends Error {
  /** The transaction id, when the datagram got that far. */
  readonly t: Buffer | undefined;
  /** The datagram was a query (y = q) with a transaction id: it deserves an error reply (BEP 5, 203). */
  readonly answerable: boolean;
  constructor(message: string, t?: Buffer, answerable = false) {
    super(message);
    this.name = 'KrpcError';
    this.t = t;
    this.answerable = answerable && t !== undefined;
  }
}

// ---------------------------------------------------------------- compact entries

/** One 6-byte compact peer, or undefined for a host that is not a plain IPv4 literal (no ::ffff: form) or a port out of range. */
export function encodeCompactPeer(host: string, port: number): Buffer | undefined {
  if (isIP(host) !== 4 || !Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return encodeCompact(host, port, 4);
}

/** One 6-byte entry; undefined for port 0 (nobody listens there). */
function decodeCompactPeer(b: Uint8Array): DhtPeer | undefined {
  const [peer] = parseCompactPeers(b, 4);
  return peer && peer.port !== 0 ? { host: peer.host, port: peer.port } : undefined;
}

/** 26-byte entries: id(20) ip(4) port(2). A trailing partial entry is a protocol error. Port 0 entries are dropped. */
export function parseCompactNodes(b: Uint8Array): CompactNode[] {
  if (b.length % COMPACT_NODE_BYTES !== 0) throw new KrpcError(`nodes is ${b.length} bytes, not a multiple of 26`);
  const out: CompactNode[] = [];
  for (let at = 0; at < b.length; at += COMPACT_NODE_BYTES) {
    const peer = decodeCompactPeer(b.subarray(at + NODE_ID_BYTES, at + COMPACT_NODE_BYTES));
    if (peer) out.push({ id: Buffer.from(b.subarray(at, at + NODE_ID_BYTES)), ...peer });
  }
  return out;
}

export function encodeCompactNodes(nodes: readonly CompactNode[]): Buffer {
  const entries: Buffer[] = [];
  for (const n of nodes) {
    const address = encodeCompactPeer(n.host, n.port);
    if (n.id.length === NODE_ID_BYTES && address) entries.push(n.id, address);
  }
  return Buffer.concat(entries);
}

// ---------------------------------------------------------------- parsing

function bytesField(d: BDict, key: string, t: Buffer, exactLength?: number): Buffer {
  const v = d.get(key);
  if (!isBytes(v)) throw new KrpcError(`${key} is missing or not a string`, t);
  if (exactLength !== undefined && v.length !== exactLength) throw new KrpcError(`${key} is ${v.length} bytes, not ${exactLength}`, t);
  return v;
}

function parseValues(list: BValue[]): DhtPeer[] {
  const out: DhtPeer[] = [];
  for (const v of list) {
    // BEP 5: each value is one 6-byte compact peer; IPv6 ones (18) and junk are skipped, not fatal
    const peer = isBytes(v) && v.length === COMPACT_PEER_BYTES ? decodeCompactPeer(v) : undefined;
    if (!peer) continue;
    out.push(peer);
    if (out.length >= MAX_VALUES_PER_REPLY) break;
  }
  return out;
}

function parseQuery(method: string, a: BDict, t: Buffer): KrpcQuery {
  const id = bytesField(a, 'id', t, NODE_ID_BYTES);
  switch (method) {
    case 'ping':
      return { q: 'ping', id };
    case 'find_node':
      return { q: 'find_node', id, target: bytesField(a, 'target', t, NODE_ID_BYTES) };
    case 'get_peers':
      return { q: 'get_peers', id, infoHash: bytesField(a, 'info_hash', t, NODE_ID_BYTES) };
    case 'announce_peer': {
      const infoHash = bytesField(a, 'info_hash', t, NODE_ID_BYTES);
      const token = bytesField(a, 'token', t);
      if (token.length > MAX_TOKEN_BYTES) throw new KrpcError('token too long', t);
      const implied = a.get('implied_port');
      const impliedPort = isInt(implied) && implied === 1;
      const port = a.get('port');
      if (!impliedPort && (!isInt(port) || port < 1 || port > 65535)) throw new KrpcError('port is missing or out of range', t);
      return { q: 'announce_peer', id, infoHash, token, impliedPort, port: isInt(port) ? port : 0 };
    }
    default:
      throw new Error('unreachable');
  }
}

const METHODS = new Set(['ping', 'find_node', 'get_peers', 'announce_peer']);

/** Parse one datagram. Throws KrpcError (with `t` when known) on anything malformed. */
export function parseKrpc(datagram: Uint8Array): KrpcMessage {
  if (datagram.length > MAX_KRPC_BYTES) throw new KrpcError(`datagram of ${datagram.length} bytes`);
  let root: BValue;
  try {
    root = decode(datagram, { maxBytes: MAX_KRPC_BYTES, maxDepth: 8, maxItems: 2048 });
  } catch (err) {
    throw new KrpcError(`not bencode: ${(err as Error).message}`);
  }
  if (!isDict(root)) throw new KrpcError('not a dictionary');
  const t = root.get('t');
  if (!isBytes(t) || t.length === 0 || t.length > MAX_TRANSACTION_BYTES) throw new KrpcError('bad transaction id');
  const y = root.get('y');
  if (!isBytes(y) || y.length !== 1) throw new KrpcError('bad message type', t);
  switch (y.toString('latin1')) {
    case 'q': {
      const q = root.get('q');
      if (!isBytes(q) || q.length > 64) throw new KrpcError('bad method name', t, true);
      const method = q.toString('latin1');
      const a = root.get('a');
      if (!isDict(a)) throw new KrpcError('query without arguments', t, true);
      if (!METHODS.has(method)) {
        if (!isBytes(a.get('id')) || (a.get('id') as Buffer).length !== NODE_ID_BYTES) throw new KrpcError('id is missing or not 20 bytes', t, true);
        return { y: 'unknown-method', t, method };
      }
      const ro = root.get('ro');
      try {
        return { y: 'q', t, query: parseQuery(method, a, t), readOnly: isInt(ro) && ro === 1 };
      } catch (err) {
        throw err instanceof KrpcError ? new KrpcError(err.message, t, true) : err;
      }
    }
    case 'r': {
      const r = root.get('r');
      if (!isDict(r)) throw new KrpcError('response without body', t);
      const id = bytesField(r, 'id', t, NODE_ID_BYTES);
      const nodes = r.get('nodes');
      const values = r.get('values');
      const token = r.get('token');
      if (nodes !== undefined && !isBytes(nodes)) throw new KrpcError('nodes is not a string', t);
      if (values !== undefined && !isList(values)) throw new KrpcError('values is not a list', t);
      if (token !== undefined && (!isBytes(token) || token.length > MAX_TOKEN_BYTES)) throw new KrpcError('bad token', t);
      const body: { id: Buffer; nodes?: CompactNode[]; values?: DhtPeer[]; token?: Buffer } = { id };
      if (nodes !== undefined) body.nodes = parseCompactNodes(nodes);
      if (values !== undefined) body.values = parseValues(values);
      if (token !== undefined) body.token = token;
      return { y: 'r', t, response: body };
    }
    case 'e': {
      const e = root.get('e');
      const code = isList(e) ? e[0] : undefined;
      const msg = isList(e) ? e[1] : undefined;
      if (!isInt(code)) throw new KrpcError('error without a code', t);
      const message = isBytes(msg) ? msg.subarray(0, 200).toString('latin1').replace(/[^\x20-\x7e]/g, '?') : '';
      return { y: 'e', t, code, message };
    }
    default:
      throw new KrpcError('unknown message type', t);
  }
}

// ---------------------------------------------------------------- encoding

/** Our client version, sent as `v` (BEP 5: two letters and two version bytes). */
export const KRPC_VERSION = Buffer.from([0x54, 0x54, 0x00, 0x01]); // "TT" 0.1

export function encodeQuery(t: Buffer, query: KrpcQuery, readOnly = false): Buffer {
  const a: Record<string, Buffer | number> = { id: query.id };
  switch (query.q) {
    case 'find_node':
      a.target = query.target;
      break;
    case 'get_peers':
      a.info_hash = query.infoHash;
      break;
    case 'announce_peer':
      a.info_hash = query.infoHash;
      a.port = query.port;
      a.token = query.token;
      if (query.impliedPort) a.implied_port = 1;
      break;
    case 'ping':
      break;
  }
  return encode({ t, y: 'q', q: query.q, a, v: KRPC_VERSION, ...(readOnly ? { ro: 1 } : {}) });
}

export interface ResponseFields {
  readonly id: Buffer;
  readonly nodes?: readonly CompactNode[];
  readonly values?: readonly Buffer[];
  readonly token?: Buffer;
}

/**
 * A response; `requester` is the querying node's address, echoed as `ip`
 * (BEP 42) so it learns its external address.
 */
export function encodeResponse(t: Buffer, fields: ResponseFields, requester?: DhtPeer): Buffer {
  const r: Record<string, Buffer | Buffer[]> = { id: fields.id };
  if (fields.nodes) r.nodes = encodeCompactNodes(fields.nodes);
  if (fields.values) r.values = [...fields.values];
  if (fields.token) r.token = fields.token;
  const ip = requester ? encodeCompactPeer(requester.host, requester.port) : undefined;
  return encode({ t, y: 'r', r, v: KRPC_VERSION, ...(ip ? { ip } : {}) });
}

export function encodeError(t: Buffer, code: number, message: string): Buffer {
  return encode({ t, y: 'e', e: [code, message], v: KRPC_VERSION });
}
