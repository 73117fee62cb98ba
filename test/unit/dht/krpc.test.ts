/**
 * KRPC codec (BEP 5): the BEP's own example datagrams parse to the values they
 * stand for; queries, responses and errors we encode round-trip through the
 * parser; compact nodes (26 bytes) and peers (6 bytes) are read and written in
 * the BEP's layout with the junk rules (port 0 dropped, partial node entries
 * fatal, odd-sized peer values skipped, values capped); every malformed
 * datagram is a KrpcError (carrying `t` once it was readable), unknown methods
 * are reported as such, error strings are sanitised, and 2,000 random
 * mutations of valid datagrams never produce anything but a value or a KrpcError.
 */
import { describe, expect, it } from 'vitest';
import { decode, encode, isDict, type BDict } from '../../../src/metainfo/bencode.js';
import {
  COMPACT_NODE_BYTES,
  KRPC_VERSION,
  KrpcError,
  MAX_KRPC_BYTES,
  MAX_TRANSACTION_BYTES,
  MAX_VALUES_PER_REPLY,
  encodeCompactNodes,
  encodeCompactPeer,
  encodeError,
  encodeQuery,
  encodeResponse,
  parseCompactNodes,
  parseKrpc,
  type CompactNode,
  type KrpcMessage,
} from '../../../src/dht/krpc.js';
import { mulberry32 } from '../../helpers/prng.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const ID_A = latin1('abcdefghij0123456789');
const ID_M = latin1('mnopqrstuvwxyz123456');
const ID_0 = latin1('0123456789abcdefghij');
const AA = latin1('aa');

/** Parse and insist it throws a KrpcError; returns it. */
function rejected(datagram: Uint8Array | string): KrpcError {
  const bytes = typeof datagram === 'string' ? latin1(datagram) : datagram;
  let caught: unknown;
  try {
    const m = parseKrpc(bytes);
    throw new Error(`expected a KrpcError, got ${JSON.stringify(m)}`);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(KrpcError);
  return caught as KrpcError;
}

function parse(datagram: string | Buffer): KrpcMessage {
  return parseKrpc(typeof datagram === 'string' ? latin1(datagram) : datagram);
}

function topDict(b: Buffer): BDict {
  const d = decode(b);
  if (!isDict(d)) throw new Error('not a dict');
  return d;
}

/** A compact node entry built by hand (not by the codec under test). */
function rawNode(id: Buffer, ip: [number, number, number, number], port: number): Buffer {
  return Buffer.concat([id, Buffer.from(ip), Buffer.from([port >> 8, port & 0xff])]);
}

describe('BEP 5 example messages', () => {
  it('ping query and response', () => {
    expect(parse('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe')).toEqual({
      y: 'q',
      t: AA,
      query: { q: 'ping', id: ID_A },
      readOnly: false,
    });
    expect(parse('d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re')).toEqual({ y: 'r', t: AA, response: { id: ID_M } });
  });

  it('find_node query; its response with the placeholder "def456..." (9 bytes, not a node) is rejected, a real one parses', () => {
    expect(parse('d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe')).toEqual({
      y: 'q',
      t: AA,
      query: { q: 'find_node', id: ID_A, target: ID_M },
      readOnly: false,
    });
    const bad = rejected('d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re');
    expect(bad.message).toMatch(/26/);

    const nodes = Buffer.concat([rawNode(ID_M, [10, 0, 0, 1], 6881), rawNode(ID_A, [192, 168, 1, 254], 65535)]);
    const real = Buffer.concat([latin1('d1:rd2:id20:0123456789abcdefghij5:nodes52:'), nodes, latin1('e1:t2:aa1:y1:re')]);
    expect(parse(real)).toEqual({
      y: 'r',
      t: AA,
      response: {
        id: ID_0,
        nodes: [
          { id: ID_M, host: '10.0.0.1', port: 6881 },
          { id: ID_A, host: '192.168.1.254', port: 65535 },
        ],
      },
    });
  });

  it('get_peers query and its response with peers (values) and a token', () => {
    expect(parse('d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe')).toEqual({
      y: 'q',
      t: AA,
      query: { q: 'get_peers', id: ID_A, infoHash: ID_M },
      readOnly: false,
    });
    // "axje.u" = 97.120.106.101 port 0x2e75; "idhtnm" = 105.100.104.116 port 0x6e6d
    expect(parse('d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re')).toEqual({
      y: 'r',
      t: AA,
      response: {
        id: ID_A,
        token: latin1('aoeusnth'),
        values: [
          { host: '97.120.106.101', port: 0x2e75 },
          { host: '105.100.104.116', port: 0x6e6d },
        ],
      },
    });
    // the "closest nodes" variant again carries the 9-byte placeholder: rejected, with its transaction id
    expect(rejected('d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re')).toBeInstanceOf(KrpcError);
  });

  it('announce_peer query (implied_port 1, port 6881) and its response', () => {
    expect(
      parse(
        'd1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe',
      ),
    ).toEqual({
      y: 'q',
      t: AA,
      query: { q: 'announce_peer', id: ID_A, infoHash: ID_M, port: 6881, impliedPort: true, token: latin1('aoeusnth') },
      readOnly: false,
    });
    expect(parse('d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re')).toEqual({ y: 'r', t: AA, response: { id: ID_M } });
  });

  it('the generic error example', () => {
    expect(parse('d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee')).toEqual({
      y: 'e',
      t: AA,
      code: 201,
      message: 'A Generic Error Ocurred',
    });
  });

  it('encodeQuery of the ping example is byte for byte the BEP datagram plus our "v"', () => {
    const b = encodeQuery(AA, { q: 'ping', id: ID_A });
    expect(b.toString('latin1')).toBe('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:v4:TT\x00\x011:y1:qe');
    expect(KRPC_VERSION.toString('latin1')).toBe('TT\x00\x01');
  });
});

describe('encode / parse round trip', () => {
  const t = Buffer.from([0x00, 0xff, 0x7f]);
  const token = Buffer.from('0102030405060708', 'hex');

  it('every query kind, with and without read-only', () => {
    const queries = [
      { q: 'ping', id: ID_A },
      { q: 'find_node', id: ID_A, target: ID_M },
      { q: 'get_peers', id: ID_M, infoHash: ID_0 },
      { q: 'announce_peer', id: ID_A, infoHash: ID_M, port: 51413, impliedPort: false, token },
      { q: 'announce_peer', id: ID_A, infoHash: ID_M, port: 1, impliedPort: true, token },
    ] as const;
    for (const query of queries) {
      for (const readOnly of [false, true]) {
        const wire = encodeQuery(t, query, readOnly);
        expect(parseKrpc(wire)).toEqual({ y: 'q', t, query, readOnly });
        const d = topDict(wire);
        expect(d.get('v')).toEqual(KRPC_VERSION);
        expect(d.get('ro')).toBe(readOnly ? 1 : undefined);
      }
    }
  });

  it('a response with nodes, values, token and the requester echoed as ip (BEP 42)', () => {
    const nodes: CompactNode[] = [
      { id: ID_M, host: '1.2.3.4', port: 6881 },
      { id: ID_0, host: '255.255.255.255', port: 65535 },
    ];
    const values = [encodeCompactPeer('5.6.7.8', 80)!, encodeCompactPeer('9.10.11.12', 443)!];
    const wire = encodeResponse(t, { id: ID_A, nodes, values, token }, { host: '203.0.113.9', port: 0x1a2b });
    expect(parseKrpc(wire)).toEqual({
      y: 'r',
      t,
      response: {
        id: ID_A,
        nodes,
        values: [
          { host: '5.6.7.8', port: 80 },
          { host: '9.10.11.12', port: 443 },
        ],
        token,
      },
    });
    expect(topDict(wire).get('ip')).toEqual(Buffer.from([203, 0, 113, 9, 0x1a, 0x2b]));
    // no requester or a non-IPv4 one: no ip key
    expect(topDict(encodeResponse(t, { id: ID_A })).has('ip')).toBe(false);
    expect(topDict(encodeResponse(t, { id: ID_A }, { host: '::1', port: 1 })).has('ip')).toBe(false);
    expect(parseKrpc(encodeResponse(t, { id: ID_A }))).toEqual({ y: 'r', t, response: { id: ID_A } });
  });

  it('errors', () => {
    for (const [code, message] of [
      [201, 'Generic Error'],
      [203, 'Protocol Error, such as a malformed packet'],
      [204, 'Method Unknown'],
      [202, ''],
    ] as const) {
      expect(parseKrpc(encodeError(t, code, message))).toEqual({ y: 'e', t, code, message });
    }
  });
});

describe('compact nodes', () => {
  it('encodes 26-byte entries id|ip|port (big-endian) and decodes them back', () => {
    const nodes: CompactNode[] = [
      { id: ID_A, host: '1.2.3.4', port: 0x1ae1 },
      { id: ID_M, host: '0.0.0.1', port: 1 },
      { id: ID_0, host: '223.255.0.7', port: 65535 },
    ];
    const b = encodeCompactNodes(nodes);
    expect(b).toHaveLength(3 * COMPACT_NODE_BYTES);
    expect(b.subarray(0, 26)).toEqual(rawNode(ID_A, [1, 2, 3, 4], 0x1ae1));
    expect(b.subarray(52, 78)).toEqual(rawNode(ID_0, [223, 255, 0, 7], 65535));
    expect(parseCompactNodes(b)).toEqual(nodes);
    expect(parseCompactNodes(Buffer.alloc(0))).toEqual([]);
  });

  it('drops entries with port 0 when decoding', () => {
    const b = Buffer.concat([rawNode(ID_A, [1, 1, 1, 1], 0), rawNode(ID_M, [2, 2, 2, 2], 2), rawNode(ID_0, [3, 3, 3, 3], 0)]);
    expect(parseCompactNodes(b)).toEqual([{ id: ID_M, host: '2.2.2.2', port: 2 }]);
  });

  it('rejects a length that is not a multiple of 26', () => {
    for (const len of [1, 25, 27, 51, 53]) {
      expect(() => parseCompactNodes(Buffer.alloc(len, 1))).toThrow(KrpcError);
    }
  });

  it('encoding skips nodes it cannot represent (non-IPv4 host, bad id length, bad port)', () => {
    const good = { id: ID_A, host: '10.0.0.1', port: 1000 };
    const b = encodeCompactNodes([
      { id: ID_M, host: '::1', port: 1000 },
      good,
      { id: ID_M, host: 'example.com', port: 1000 },
      { id: Buffer.alloc(19), host: '10.0.0.2', port: 1000 },
      { id: ID_0, host: '10.0.0.3', port: 65536 },
    ]);
    expect(parseCompactNodes(b)).toEqual([good]);
  });

  it('compact peers: 6 bytes, IPv4 only', () => {
    expect(encodeCompactPeer('1.2.3.4', 0x0102)).toEqual(Buffer.from([1, 2, 3, 4, 1, 2]));
    expect(encodeCompactPeer('::1', 1)).toBeUndefined();
    expect(encodeCompactPeer('host', 1)).toBeUndefined();
    expect(encodeCompactPeer('1.2.3.4', 70000)).toBeUndefined();
  });
});

describe('values (get_peers peers)', () => {
  function withValues(items: Buffer[]): Buffer {
    return encode({ t: AA, y: 'r', r: { id: ID_A, values: items } });
  }

  it('keeps 6-byte entries, skips other lengths and port 0', () => {
    const wire = encode({
      t: AA,
      y: 'r',
      r: {
        id: ID_A,
        values: [
          Buffer.from([1, 2, 3, 4, 0, 80]),
          Buffer.alloc(18, 7), // IPv6 (BEP 32 style): skipped
          Buffer.from([5, 6, 7, 8, 0]), // 5 bytes
          Buffer.from([9, 9, 9, 9, 0, 0]), // port 0
          7, // not a string at all
          Buffer.from([10, 0, 0, 1, 0x1a, 0xe1]),
          Buffer.alloc(7, 1),
        ],
      },
    });
    expect(parseKrpc(wire)).toEqual({
      y: 'r',
      t: AA,
      response: {
        id: ID_A,
        values: [
          { host: '1.2.3.4', port: 80 },
          { host: '10.0.0.1', port: 6881 },
        ],
      },
    });
  });

  it(`keeps at most MAX_VALUES_PER_REPLY (${MAX_VALUES_PER_REPLY}), the first ones`, () => {
    const items = Array.from({ length: MAX_VALUES_PER_REPLY + 50 }, (_, i) => Buffer.from([10, 1, i >> 8, i & 0xff, 0, 1]));
    const m = parseKrpc(withValues(items));
    if (m.y !== 'r') throw new Error('not a response');
    expect(m.response.values).toHaveLength(MAX_VALUES_PER_REPLY);
    expect(m.response.values![0]).toEqual({ host: '10.1.0.0', port: 1 });
    expect(m.response.values![MAX_VALUES_PER_REPLY - 1]).toEqual({ host: `10.1.0.${MAX_VALUES_PER_REPLY - 1}`, port: 1 });
  });

  it('an empty values list is an empty array', () => {
    expect(parseKrpc(withValues([]))).toEqual({ y: 'r', t: AA, response: { id: ID_A, values: [] } });
  });
});

describe('rejection', () => {
  const ping = (a: Record<string, unknown>, top: Record<string, unknown> = {}): Buffer =>
    encode({ t: AA, y: 'q', q: 'ping', a, ...top } as never);
  const announce = (a: Record<string, unknown>): Buffer =>
    encode({ t: AA, y: 'q', q: 'announce_peer', a: { id: ID_A, info_hash: ID_M, ...a } } as never);

  it('missing, empty or over-long transaction id (no t to answer with)', () => {
    expect(rejected('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe').t).toBeUndefined();
    expect(rejected(encode({ t: Buffer.alloc(0), y: 'q', q: 'ping', a: { id: ID_A } })).t).toBeUndefined();
    expect(rejected(encode({ t: 5, y: 'q', q: 'ping', a: { id: ID_A } })).t).toBeUndefined();
    expect(rejected(encode({ t: Buffer.alloc(MAX_TRANSACTION_BYTES + 1, 1), y: 'q', q: 'ping', a: { id: ID_A } })).t).toBeUndefined();
    // the longest allowed is fine
    const t16 = Buffer.alloc(MAX_TRANSACTION_BYTES, 2);
    expect(parseKrpc(encode({ t: t16, y: 'q', q: 'ping', a: { id: ID_A } }))).toMatchObject({ y: 'q', t: t16 });
  });

  it('bad message type', () => {
    for (const y of ['x', 'qq', '', 'Q']) {
      expect(rejected(encode({ t: AA, y, q: 'ping', a: { id: ID_A } })).t).toEqual(AA);
    }
    expect(rejected(encode({ t: AA, y: 1, q: 'ping', a: { id: ID_A } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, q: 'ping', a: { id: ID_A } })).t).toEqual(AA);
  });

  it('not a dictionary, empty, garbage', () => {
    rejected('l1:t2:aae');
    rejected('i42e');
    rejected('');
    rejected('hello world');
  });

  it('a query without arguments, or with a bad method name', () => {
    expect(rejected('d1:q4:ping1:t2:aa1:y1:qe').t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'q', q: 'ping', a: [ID_A] })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'q', a: { id: ID_A } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'q', q: 'x'.repeat(65), a: { id: ID_A } })).t).toEqual(AA);
  });

  it('an id that is not 20 bytes (query and response)', () => {
    for (const id of [Buffer.alloc(19, 1), Buffer.alloc(21, 1), Buffer.alloc(0)]) {
      expect(rejected(ping({ id })).t).toEqual(AA);
      expect(rejected(encode({ t: AA, y: 'r', r: { id } })).t).toEqual(AA);
    }
    expect(rejected(ping({})).t).toEqual(AA);
    expect(rejected(ping({ id: 5 })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'r', r: {} })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'r' })).t).toEqual(AA);
  });

  it('find_node / get_peers targets must be 20 bytes', () => {
    expect(rejected(encode({ t: AA, y: 'q', q: 'find_node', a: { id: ID_A } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'q', q: 'find_node', a: { id: ID_A, target: Buffer.alloc(8) } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'q', q: 'get_peers', a: { id: ID_A, info_hash: Buffer.alloc(21) } })).t).toEqual(AA);
  });

  it('announce_peer without a token, without a port, or with a port out of range', () => {
    const token = latin1('aoeusnth');
    expect(rejected(announce({ port: 6881 })).t).toEqual(AA);
    expect(rejected(announce({ port: 6881, token: 7 })).t).toEqual(AA);
    expect(rejected(announce({ port: 6881, token: Buffer.alloc(65, 1) })).t).toEqual(AA);
    expect(rejected(announce({ token })).t).toEqual(AA);
    expect(rejected(announce({ token, implied_port: 0 })).t).toEqual(AA);
    for (const port of [0, -1, 65536, 2 ** 40]) expect(rejected(announce({ token, port })).t).toEqual(AA);
    expect(rejected(announce({ token, port: latin1('6881') })).t).toEqual(AA);
    // the extremes of the range are fine
    for (const port of [1, 65535]) expect(parseKrpc(announce({ token, port }))).toMatchObject({ query: { port, impliedPort: false } });
  });

  it('announce_peer with implied_port=1 needs no port', () => {
    expect(parseKrpc(announce({ token: latin1('tok'), implied_port: 1 }))).toEqual({
      y: 'q',
      t: AA,
      query: { q: 'announce_peer', id: ID_A, infoHash: ID_M, token: latin1('tok'), impliedPort: true, port: 0 },
      readOnly: false,
    });
  });

  it('responses with a mistyped nodes, values or token', () => {
    expect(rejected(encode({ t: AA, y: 'r', r: { id: ID_A, nodes: [ID_M] } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'r', r: { id: ID_A, values: ID_M } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'r', r: { id: ID_A, token: 5 } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'r', r: { id: ID_A, token: Buffer.alloc(65) } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'r', r: { id: ID_A, nodes: Buffer.alloc(27) } }))).toBeInstanceOf(KrpcError);
  });

  it('errors without a code', () => {
    expect(rejected(encode({ t: AA, y: 'e', e: ['oops', 201] })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'e', e: [] })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'e', e: 201 })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'e' })).t).toEqual(AA);
  });

  it(`a datagram over MAX_KRPC_BYTES (${MAX_KRPC_BYTES}) is refused before decoding; exactly the limit is read`, () => {
    const sized = (total: number): Buffer => {
      // d1:ad2:id20:...e + 1:p<len>:<pad> + 1:q4:ping1:t2:aa1:y1:qe; solve for the pad length
      for (let pad = total; pad >= 0; pad--) {
        const b = encode({ t: AA, y: 'q', q: 'ping', a: { id: ID_A }, p: Buffer.alloc(pad, 0x61) });
        if (b.length === total) return b;
      }
      throw new Error('no size');
    };
    const atLimit = sized(MAX_KRPC_BYTES);
    expect(atLimit).toHaveLength(MAX_KRPC_BYTES);
    expect(parseKrpc(atLimit)).toMatchObject({ y: 'q', query: { q: 'ping' } });
    const over = sized(MAX_KRPC_BYTES + 1);
    expect(over).toHaveLength(MAX_KRPC_BYTES + 1);
    expect(rejected(over).message).toMatch(/datagram/);
  });

  it('non-canonical or trailing bencode', () => {
    const a = 'd1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe';
    rejected(a + 'x'); // trailing bytes
    rejected(a + 'de'); // a second value
    rejected(a.slice(0, -1)); // truncated
    rejected('d1:ad2:id20:abcdefghij0123456789ei1e4:ping1:t2:aa1:y1:qe'); // a dict key that is not a string
    rejected('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t02:aa1:y1:qe'); // string length with a leading zero
    rejected('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q1:t2:bbe'); // duplicate key
    const port = (p: string): string =>
      `d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti${p}e5:token3:toke1:q13:announce_peer1:t2:aa1:y1:qe`;
    expect(parse(port('6881'))).toMatchObject({ query: { port: 6881 } });
    rejected(port('06881')); // leading zero
    rejected(port('-0'));
    rejected(port('')); // no digits
    rejected(port('6881.0'));
  });
});

describe('unknown methods, read-only, error text', () => {
  it('an unknown method with a valid id is reported so it can be answered with 204', () => {
    expect(parse('d1:ad2:id20:abcdefghij0123456789e1:q17:sample_infohashes1:t2:aa1:y1:qe')).toEqual({
      y: 'unknown-method',
      t: AA,
      method: 'sample_infohashes',
    });
    expect(parseKrpc(encode({ t: AA, y: 'q', q: '', a: { id: ID_A } }))).toEqual({ y: 'unknown-method', t: AA, method: '' });
    // ... but its id is still checked
    expect(rejected(encode({ t: AA, y: 'q', q: 'vote', a: { id: ID_A.subarray(1) } })).t).toEqual(AA);
    expect(rejected(encode({ t: AA, y: 'q', q: 'vote' })).t).toEqual(AA);
  });

  it('ro: 1 marks a read-only query (BEP 43); other values do not', () => {
    const q = (ro?: unknown): Buffer => encode({ t: AA, y: 'q', q: 'ping', a: { id: ID_A }, ro } as never);
    expect(parseKrpc(q(1))).toMatchObject({ y: 'q', readOnly: true });
    expect(parseKrpc(q(0))).toMatchObject({ y: 'q', readOnly: false });
    expect(parseKrpc(q(2))).toMatchObject({ y: 'q', readOnly: false });
    expect(parseKrpc(q(latin1('1')))).toMatchObject({ y: 'q', readOnly: false });
    expect(parseKrpc(q())).toMatchObject({ y: 'q', readOnly: false });
  });

  it('an error message is sanitised to printable ASCII and capped at 200 characters', () => {
    const raw = Buffer.concat([latin1('bad\x00\x1b[31m\n\xff\xe9!'), Buffer.alloc(500, 0x41)]);
    const m = parseKrpc(encode({ t: AA, y: 'e', e: [202, raw] }));
    if (m.y !== 'e') throw new Error('not an error');
    expect(m.code).toBe(202);
    expect(m.message).toHaveLength(200);
    expect(m.message).toMatch(/^[\x20-\x7e]*$/);
    expect(m.message.startsWith('bad??[31m???!AAA')).toBe(true);
    // a missing or non-string message is empty
    expect(parseKrpc(encode({ t: AA, y: 'e', e: [201] }))).toEqual({ y: 'e', t: AA, code: 201, message: '' });
    expect(parseKrpc(encode({ t: AA, y: 'e', e: [201, 5] }))).toEqual({ y: 'e', t: AA, code: 201, message: '' });
  });
});

describe('random mutations', () => {
  const seeds: Buffer[] = [
    latin1('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe'),
    latin1('d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe'),
    latin1('d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe'),
    latin1(
      'd1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe',
    ),
    latin1('d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re'),
    latin1('d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee'),
    encodeResponse(
      AA,
      {
        id: ID_A,
        nodes: [
          { id: ID_M, host: '1.2.3.4', port: 1 },
          { id: ID_0, host: '5.6.7.8', port: 2 },
        ],
        token: latin1('tok'),
      },
      { host: '9.9.9.9', port: 9 },
    ),
    encodeQuery(latin1('xy'), { q: 'find_node', id: ID_M, target: ID_0 }, true),
  ];

  it('2,000 mutated datagrams either parse to a well-formed value or throw KrpcError', () => {
    const rnd = mulberry32(0xd47);
    const int = (n: number): number => Math.floor(rnd() * n);
    let parsed = 0;
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      let b = Buffer.from(seeds[int(seeds.length)]!);
      const edits = 1 + int(3);
      for (let e = 0; e < edits; e++) {
        const at = int(b.length + 1);
        switch (int(5)) {
          case 0: // flip bits of one byte
            if (b.length > 0) b[Math.min(at, b.length - 1)]! ^= 1 << int(8);
            break;
          case 1: // overwrite with a bencode-significant byte
            if (b.length > 0) b[Math.min(at, b.length - 1)] = latin1('0123456789:deil-')[int(16)]!;
            break;
          case 2: // insert a random byte
            b = Buffer.concat([b.subarray(0, at), Buffer.from([int(256)]), b.subarray(at)]);
            break;
          case 3: // delete a byte
            b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
            break;
          case 4: // truncate
            b = b.subarray(0, at);
            break;
        }
      }
      let m: KrpcMessage;
      try {
        m = parseKrpc(b);
      } catch (err) {
        if (!(err instanceof KrpcError)) throw new Error(`mutation ${i} (${b.toString('hex')}) threw ${String(err)}`);
        refused++;
        continue;
      }
      parsed++;
      expect(m.t.length).toBeGreaterThan(0);
      expect(m.t.length).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
      if (m.y === 'q') {
        expect(m.query.id).toHaveLength(20);
        if (m.query.q === 'announce_peer' && !m.query.impliedPort) {
          expect(m.query.port).toBeGreaterThanOrEqual(1);
          expect(m.query.port).toBeLessThanOrEqual(65535);
        }
      } else if (m.y === 'r') {
        expect(m.response.id).toHaveLength(20);
        for (const n of m.response.nodes ?? []) {
          expect(n.id).toHaveLength(20);
          expect(n.port).toBeGreaterThan(0);
        }
        for (const p of m.response.values ?? []) expect(p.port).toBeGreaterThan(0);
      } else if (m.y === 'e') {
        expect(m.message).toMatch(/^[\x20-\x7e]*$/);
      }
    }
    // both outcomes happen: the mutations are neither all fatal nor all harmless
    expect(parsed).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(500);
  });
});
