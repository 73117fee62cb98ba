/**
 * Fuzzing the DHT's datagram parser (BEP 5 KRPC): every mutated datagram is a
 * validated message or a KrpcError, fast, without heap growth; accepted
 * messages hold only in-range fields, and queries re-encode to a datagram
 * that parses back to the same query.
 */
import { describe, expect, it } from 'vitest';
import {
  COMPACT_NODE_BYTES,
  KrpcError,
  MAX_TOKEN_BYTES,
  MAX_TRANSACTION_BYTES,
  MAX_VALUES_PER_REPLY,
  NODE_ID_BYTES,
  encodeCompactNodes,
  encodeError,
  encodeQuery,
  encodeResponse,
  parseKrpc,
  type KrpcMessage,
} from '../../src/dht/krpc.js';
import { encode } from '../../src/metainfo/bencode.js';
import { invariant, runFuzz } from './engine.js';

const ID = Buffer.alloc(NODE_ID_BYTES, 0x41);
const HASH = Buffer.alloc(NODE_ID_BYTES, 0x42);
const T = Buffer.from('aa');
const NODES = [
  { id: Buffer.alloc(NODE_ID_BYTES, 1), host: '10.0.0.1', port: 6881 },
  { id: Buffer.alloc(NODE_ID_BYTES, 2), host: '192.0.2.9', port: 51413 },
];

function corpus(): Buffer[] {
  return [
    encodeQuery(T, { q: 'ping', id: ID }),
    encodeQuery(T, { q: 'find_node', id: ID, target: HASH }, true),
    encodeQuery(T, { q: 'get_peers', id: ID, infoHash: HASH }),
    encodeQuery(T, { q: 'announce_peer', id: ID, infoHash: HASH, port: 6881, impliedPort: true, token: Buffer.from('tok4') }),
    encodeResponse(T, { id: ID, nodes: NODES, token: Buffer.from('token') }, { host: '127.0.0.1', port: 6881 }),
    encodeResponse(T, { id: ID, values: [Buffer.from([10, 0, 0, 1, 0x1a, 0xe1]), Buffer.from([10, 0, 0, 2, 0x1a, 0xe2])], token: Buffer.from('t') }),
    encodeError(T, 203, 'bad token'),
    encode({ t: T, y: 'q', q: 'sample_infohashes', a: { id: ID, target: HASH } }),
    encode({ t: T, y: 'r', r: { id: ID, nodes: encodeCompactNodes(NODES), p: 6881 }, ip: Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]), v: 'LT\x02\x08' }),
  ];
}

function checkMessage(m: KrpcMessage): void {
  invariant(m.t.length >= 1 && m.t.length <= MAX_TRANSACTION_BYTES, 'transaction id bounded');
  if (m.y === 'q') {
    invariant(m.query.id.length === NODE_ID_BYTES, 'query id is 20 bytes');
    if (m.query.q === 'announce_peer') {
      invariant(m.query.impliedPort || (m.query.port >= 1 && m.query.port <= 65535), 'announce port in range');
      invariant(m.query.token.length <= MAX_TOKEN_BYTES, 'token bounded');
    }
    // a parsed query re-encodes to a datagram that parses back to the same query
    const again = parseKrpc(encodeQuery(m.t, m.query, m.readOnly));
    invariant(again.y === 'q' && JSON.stringify(again.query) === JSON.stringify(m.query) && again.readOnly === m.readOnly, 'query round-trips');
  } else if (m.y === 'r') {
    const r = m.response;
    invariant(r.id.length === NODE_ID_BYTES, 'response id is 20 bytes');
    for (const n of r.nodes ?? []) invariant(n.id.length === NODE_ID_BYTES && n.port >= 1 && n.port <= 65535 && /^\d+\.\d+\.\d+\.\d+$/.test(n.host), 'node entry well-formed');
    invariant((r.values ?? []).length <= MAX_VALUES_PER_REPLY, 'values capped');
    for (const p of r.values ?? []) invariant(p.port >= 1 && p.port <= 65535 && /^\d+\.\d+\.\d+\.\d+$/.test(p.host), 'value well-formed');
    invariant((r.token?.length ?? 0) <= MAX_TOKEN_BYTES, 'token bounded');
    if (r.nodes) invariant(encodeCompactNodes(r.nodes).length === r.nodes.length * COMPACT_NODE_BYTES, 'nodes re-encode');
  } else if (m.y === 'e') {
    invariant(Number.isSafeInteger(m.code) && m.message.length <= 200 && /^[\x20-\x7e]*$/.test(m.message), 'error text bounded and printable');
  } else {
    invariant(m.method.length <= 64, 'unknown method name bounded');
  }
}

describe('fuzz: DHT', () => {
  it('parseKrpc (BEP 5): a validated message or a KrpcError', () => {
    const stats = runFuzz<KrpcMessage>({
      name: 'parseKrpc',
      corpus: corpus(),
      iterations: 15_000,
      maxInputBytes: 9_000,
      errors: [KrpcError],
      run: (input) => parseKrpc(input),
      check: (_input, m) => checkMessage(m),
    });
    expect(stats.accepted).toBeGreaterThan(1000);
    expect(stats.rejected.get('KrpcError')).toBeGreaterThan(1000);
  });
});
