/**
 * Hostile parties on the network against tt's DHT node (BEP 5, src/dht/), over
 * real loopback UDP: raw `node:dgram` sockets play the attacker against a
 * listening DhtNode (127.0.0.1, no bootstrap). The whole 127/8 block is
 * loopback, so an attacker "from another address" binds 127.x.y.z.
 *
 * What it proves, each test failing if its defence is taken away:
 * - garbage datagrams (random bytes, truncated or absurd bencode, deep nesting,
 *   non-dict roots, datagrams past MAX_KRPC_BYTES) are dropped unanswered and the
 *   node still answers; a malformed query whose `t` is readable gets KRPC error
 *   203, an unknown method 204; an unreadable `t`, and malformed responses and
 *   errors, get nothing (no error ping-pong);
 * - a response or error carrying the transaction id of a pending query but sent
 *   from another address does not settle it; unsolicited and late responses add
 *   nothing to the routing table;
 * - announce_peer needs the write token issued to the announcer's IP by
 *   get_peers, not older than two rotations: missing, forged, foreign and stale
 *   tokens are refused and store nothing; implied_port stores the source port
 *   and the stored host is always the source IP;
 * - query floods get the per-address burst plus its refill (and the global cap
 *   across addresses); other addresses are still answered; announce floods leave
 *   the PeerStore at MAX_STORED_HASHES hashes and MAX_PEERS_PER_HASH peers;
 * - the routing table holds one entry per address:port (also when an id moves),
 *   never our own id nor read-only queriers, at most K per bucket, and does not
 *   move a good node's id to a claimant;
 * - lookups against hostile responders (hundreds of silent "close" nodes, a
 *   swarm that keeps the lookup going, junk `values`, 1000 values, wrong-typed
 *   fields) end within MAX_LOOKUP_QUERIES, keep only well-formed peers (at most
 *   MAX_VALUES_PER_REPLY per reply) and count malformed answers as failures.
 *
 * Bugs it found, now guarded by the tests named after them (fixed in src/dht/
 * while this file was written):
 * - one IP announcing MAX_PEERS_PER_HASH ports evicted every other peer of a torrent;
 * - one IP announcing MAX_STORED_HASHES new info hashes (~100 s at its rate limit)
 *   evicted every torrent other IPs had announced;
 * - a new info hash announced to a full PeerStore scanned every stored peer (CPU);
 * - a node that only sent queries (never answered one) was handed out in find_node;
 * - K queriers that never answer held a bucket for good against nodes that answer;
 * - a responder naming hundreds of fake close nodes pushed every node that
 *   answered out of the lookup, so the announce reached nobody;
 * - a wall-clock step backwards drove the rate-limit buckets negative: the node went deaf.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decode, encode, isBytes, isDict, isList, type BDict, type BEncodable } from '../../../src/metainfo/bencode.js';
import { encodeCompactNodes, encodeCompactPeer, KRPC_ERROR, MAX_KRPC_BYTES, MAX_VALUES_PER_REPLY } from '../../../src/dht/krpc.js';
import { MAX_CANDIDATES, MAX_LOOKUP_QUERIES } from '../../../src/dht/lookup.js';
import { QUERIES_PER_ADDRESS_PER_S, QUERIES_PER_S, type DhtNode } from '../../../src/dht/node.js';
import { K, randomIdInBucket } from '../../../src/dht/routing-table.js';
import { MAX_PEERS_PER_HASH, MAX_STORED_HASHES, MAX_VALUES_RETURNED, TOKEN_ROTATE_MS } from '../../../src/dht/store.js';
import { closeDhtNodes, loopbackDhtNode } from '../../helpers/dht.js';
import { mulberry32 } from '../../helpers/prng.js';
import { until } from '../../helpers/until.js';

const LOCAL = '127.0.0.1';
/** Per-address token bucket in node.ts: a burst of twice the per-second rate. */
const ADDRESS_BURST = 2 * QUERIES_PER_ADDRESS_PER_S;

// ---------------------------------------------------------------- raw UDP attacker

interface Datagram {
  readonly msg: Buffer;
  readonly host: string;
  readonly port: number;
  /** The datagram decoded, when it is a bencoded dict. */
  readonly dict: BDict | undefined;
}

type Handler = (d: BDict, from: Datagram) => Buffer | undefined;

const sockets: Udp[] = [];

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(sockets.splice(0).map((s) => s.close()));
  await closeDhtNodes();
});

class Udp {
  readonly inbox: Datagram[] = [];
  #handler: Handler | undefined;
  #delayMs = 0;
  #closed = false;

  constructor(
    readonly socket: dgram.Socket,
    readonly host: string,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => {
      const dg: Datagram = { msg, host: rinfo.address, port: rinfo.port, dict: tryDecode(msg) };
      this.inbox.push(dg);
      if (this.#handler && dg.dict && str(dg.dict, 'y') === 'q') {
        const out = this.#handler(dg.dict, dg);
        if (out && this.#delayMs > 0) setTimeout(() => this.send(out, dg), this.#delayMs);
        else if (out) this.send(out, dg);
      }
    });
  }

  /** Answer every query this socket receives with `handler`'s datagram (undefined: stay silent), `delayMs` later. */
  answer(handler: Handler, delayMs = 0): this {
    this.#handler = handler;
    this.#delayMs = delayMs;
    return this;
  }


  send(buf: Buffer, to: { port: number; host?: string }): void {
    if (!this.#closed) this.socket.send(buf, to.port, to.host ?? LOCAL);
  }

  /** Queries received (decoded), optionally of one method. */
  queries(method?: string): BDict[] {
    return this.inbox.flatMap((d) => (d.dict && str(d.dict, 'y') === 'q' && (method === undefined || str(d.dict, 'q') === method) ? [d.dict] : []));
  }

  async next(pred: (d: Datagram) => boolean, ms = 2_000, what = 'a datagram'): Promise<Datagram> {
    let found: Datagram | undefined;
    await until(() => (found = this.inbox.find(pred)) !== undefined, ms, what);
    return found!;
  }

  /** The reply (r or e) carrying transaction id `t`. */
  async replyTo(t: Buffer, ms = 2_000): Promise<BDict> {
    const d = await this.next((x) => x.dict !== undefined && tOf(x.dict)?.equals(t) === true, ms, `the reply to t=${t.toString('hex')}`);
    return d.dict!;
  }

  close(): Promise<void> {
    this.#closed = true;
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

async function udp(host = LOCAL, port = 0): Promise<Udp> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => undefined);
  const u = new Udp(socket, host, socket.address().port);
  sockets.push(u);
  return u;
}

// ---------------------------------------------------------------- KRPC by hand

function tryDecode(b: Buffer): BDict | undefined {
  try {
    const v = decode(b);
    return isDict(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function str(d: BDict, key: string): string | undefined {
  const v = d.get(key);
  return isBytes(v) ? v.toString('latin1') : undefined;
}

function tOf(d: BDict): Buffer | undefined {
  const t = d.get('t');
  return isBytes(t) ? t : undefined;
}

function errorCode(d: BDict): number | undefined {
  const e = d.get('e');
  return isList(e) && typeof e[0] === 'number' ? e[0] : undefined;
}

function body(d: BDict): BDict {
  const r = d.get('r');
  if (!isDict(r)) throw new Error(`not a response: y=${str(d, 'y')} e=${errorCode(d)}`);
  return r;
}

function bytesOf(d: BDict, key: string): Buffer | undefined {
  const v = d.get(key);
  return isBytes(v) ? v : undefined;
}

/** What `u` received other than queries of the node's own (which may ping whoever queried it): replies. */
function replies(u: Udp): Datagram[] {
  return u.inbox.filter((d) => d.dict === undefined || str(d.dict, 'y') !== 'q');
}

/** The responses `u` received (answers to its queries). */
function answersTo(u: Udp): Datagram[] {
  return u.inbox.filter((d) => d.dict !== undefined && str(d.dict, 'y') === 'r');
}

/** The compact peers of a get_peers answer (undefined when it carries no `values`). */
function valuesOf(reply: BDict): Buffer[] | undefined {
  const v = body(reply).get('values');
  return isList(v) ? v.filter(isBytes) : undefined;
}

function tid(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function query(t: Buffer, method: string, a: Record<string, BEncodable>, extra: Record<string, BEncodable> = {}): Buffer {
  return encode({ t, y: 'q', q: method, a, ...extra });
}

const ping = (t: Buffer, id: Buffer): Buffer => query(t, 'ping', { id });
const getPeersQ = (t: Buffer, id: Buffer, infoHash: Buffer): Buffer => query(t, 'get_peers', { id, info_hash: infoHash });
function announceQ(t: Buffer, id: Buffer, infoHash: Buffer, port: number, token: Buffer, extra: Record<string, BEncodable> = {}): Buffer {
  return query(t, 'announce_peer', { id, info_hash: infoHash, port, token, ...extra });
}

function response(t: Buffer, r: BEncodable): Buffer {
  return encode({ t, y: 'r', r });
}

function to(node: DhtNode): { port: number } {
  return { port: node.port };
}

function peer(host: string, port: number): Buffer {
  return encodeCompactPeer(host, port)!;
}

/** `base` with its last 4 bytes XORed with `n`: distinct ids, all very close to `base`. */
function near(base: Buffer, n: number): Buffer {
  const id = Buffer.from(base);
  id.writeUInt32BE((id.readUInt32BE(16) ^ n) >>> 0, 16);
  return id;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const yieldLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Rejects when `p` has not settled within `ms` (a hang is a failure, not a stuck test). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still running after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ping from `u`; resolves with the node's answer (throws when none comes within `ms`). */
async function pingOk(u: Udp, node: DhtNode, n = 0xfeed, ms = 2_000): Promise<BDict> {
  const t = tid(n);
  u.send(ping(t, randomBytes(20)), to(node));
  const reply = await u.replyTo(t, ms);
  expect(str(reply, 'y')).toBe('r');
  return reply;
}

/** A write token for `u`'s IP, from a get_peers answer. */
async function tokenFor(u: Udp, node: DhtNode, n = 0x70c): Promise<Buffer> {
  const t = tid(n);
  u.send(getPeersQ(t, randomBytes(20), randomBytes(20)), to(node));
  const token = bytesOf(body(await u.replyTo(t)), 'token');
  expect(token).toBeDefined();
  return token!;
}

/** Sends `u` a query of its own and waits for the answer (the attacker pulls the node's state out over the wire). */
async function peersServed(u: Udp, node: DhtNode, infoHash: Buffer, n: number): Promise<Buffer[] | undefined> {
  const t = tid(n);
  u.send(getPeersQ(t, randomBytes(20), infoHash), to(node));
  return valuesOf(await u.replyTo(t));
}

// ---------------------------------------------------------------- garbage

describe('garbage datagrams', () => {
  const validPing = ping(Buffer.from('aa'), Buffer.alloc(20, 7));
  const GARBAGE: Array<[string, Buffer]> = [
    ['an empty datagram', Buffer.alloc(0)],
    ["a lone 'e'", Buffer.from('e')],
    ['l-3:e (a negative length)', Buffer.from('l-3:e')],
    ['a truncated ping', validPing.subarray(0, validPing.length - 5)],
    ['a string length of 2^64', Buffer.from('d1:t18446744073709551616:aa1:y1:qe')],
    ['a string length past the end', Buffer.from('d1:t2:aa1:y1:q1:q4:ping1:ad2:id4294967295:xe')],
    ['an integer of 40 digits', Buffer.from(`d1:ti${'9'.repeat(40)}e1:y1:qe`)],
    ['an integer root', Buffer.from('i42e')],
    ['a string root', Buffer.from('4:ping')],
    ['a list root holding a whole ping', encode([validPing])],
    ['1000 nested lists', Buffer.from(`${'l'.repeat(1000)}${'e'.repeat(1000)}`)],
    ['a ping whose arguments nest 9 deep', query(Buffer.from('ab'), 'ping', { id: Buffer.alloc(20, 1), x: [[[[[[[[1]]]]]]]] })],
    ['3000 items', Buffer.from(`d1:t2:ab1:y1:q1:xl${'i0e'.repeat(3000)}ee`)],
    ['a duplicate key', Buffer.from('d1:t2:ab1:t2:cd1:y1:qe')],
    ['trailing bytes after a valid ping', Buffer.concat([validPing, Buffer.from('xyz')])],
    ['a dict key that is an integer', Buffer.from('di1e2:ab1:t2:abe')],
    ['a 60 KiB datagram', Buffer.alloc(60 * 1024, 0x64)],
  ];

  it('random bytes and malformed bencode are dropped unanswered, and the node still answers a ping', async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    for (const [, bytes] of GARBAGE) attacker.send(bytes, to(node));
    const random = mulberry32(0xd47);
    for (let i = 0; i < 500; i++) {
      const len = 1 + Math.floor(random() * 1400);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(random() * 256);
      attacker.send(b, to(node));
      if (i % 50 === 49) await yieldLoop();
    }
    // loopback keeps order: anything the garbage provoked arrives before this answer
    await pingOk(attacker, node);
    expect(replies(attacker).length).toBe(1);
    expect(node.closed).toBe(false);
  });

  it('a ping padded past MAX_KRPC_BYTES is dropped, the same ping at exactly MAX_KRPC_BYTES is answered', async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    const padded = (t: Buffer, total: number): Buffer => {
      const bare = encode({ t, y: 'q', q: 'ping', a: { id: randomBytes(20) }, zz: Buffer.alloc(0) });
      // each extra pad byte adds one byte, except when the length prefix grows a digit
      let pad = total - bare.length;
      let out = encode({ t, y: 'q', q: 'ping', a: { id: randomBytes(20) }, zz: Buffer.alloc(pad) });
      pad -= out.length - total;
      out = encode({ t, y: 'q', q: 'ping', a: { id: randomBytes(20) }, zz: Buffer.alloc(pad) });
      expect(out.length).toBe(total);
      return out;
    };
    attacker.send(padded(tid(1), MAX_KRPC_BYTES + 1), to(node));
    attacker.send(padded(tid(2), MAX_KRPC_BYTES), to(node));
    const reply = await attacker.replyTo(tid(2));
    expect(str(reply, 'y')).toBe('r');
    expect(replies(attacker).map((d) => tOf(d.dict!)!.toString('hex'))).toEqual([tid(2).toString('hex')]);
  });

  const t = Buffer.from('x7');
  const id = Buffer.alloc(20, 9);
  const MALFORMED: Array<[string, Buffer]> = [
    ['a ping without id', query(t, 'ping', {})],
    ['a ping with a 19-byte id', query(t, 'ping', { id: Buffer.alloc(19) })],
    ['a ping whose id is an integer', query(t, 'ping', { id: 5 })],
    ['a query without arguments', encode({ t, y: 'q', q: 'ping' })],
    ['arguments that are a list', encode({ t, y: 'q', q: 'ping', a: [id] })],
    ['a method name that is an integer', encode({ t, y: 'q', q: 7, a: { id } })],
    ['a method name of 65 bytes', query(t, 'p'.repeat(65), { id })],
    ['find_node without target', query(t, 'find_node', { id })],
    ['find_node with a 21-byte target', query(t, 'find_node', { id, target: Buffer.alloc(21) })],
    ['get_peers with a 19-byte info_hash', query(t, 'get_peers', { id, info_hash: Buffer.alloc(19) })],
    ['announce_peer without port or implied_port', query(t, 'announce_peer', { id, info_hash: id, token: Buffer.alloc(8) })],
    ['announce_peer with port 0', query(t, 'announce_peer', { id, info_hash: id, port: 0, token: Buffer.alloc(8) })],
    ['announce_peer with port 65536', query(t, 'announce_peer', { id, info_hash: id, port: 65536, token: Buffer.alloc(8) })],
    ['announce_peer with port -1', query(t, 'announce_peer', { id, info_hash: id, port: -1, token: Buffer.alloc(8) })],
    ['announce_peer with a 65-byte token', query(t, 'announce_peer', { id, info_hash: id, port: 1, token: Buffer.alloc(65) })],
    ['an unknown method without an id', query(t, 'vote', { target: id })],
  ];

  it.each(MALFORMED)('%s gets KRPC error 203 under its transaction id', async (_name, bytes) => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    attacker.send(bytes, to(node));
    const reply = await attacker.replyTo(t);
    expect(str(reply, 'y')).toBe('e');
    expect(errorCode(reply)).toBe(KRPC_ERROR.protocol);
    expect(node.table.size).toBe(0);
    await pingOk(attacker, node);
  });

  it.each(['vote', 'sample_infohashes', 'get', 'put', 'Ping'])('an unknown method %s gets KRPC error 204', async (method) => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    attacker.send(query(t, method, { id, target: id }), to(node));
    const reply = await attacker.replyTo(t);
    expect(str(reply, 'y')).toBe('e');
    expect(errorCode(reply)).toBe(KRPC_ERROR.methodUnknown);
  });

  it('a malformed query whose transaction id is unreadable (missing, empty, 17 bytes, an integer) gets no reply', async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    attacker.send(encode({ y: 'q', q: 'ping', a: {} }), to(node));
    attacker.send(encode({ t: Buffer.alloc(0), y: 'q', q: 'ping', a: {} }), to(node));
    attacker.send(encode({ t: Buffer.alloc(17, 1), y: 'q', q: 'ping', a: {} }), to(node));
    attacker.send(encode({ t: 12, y: 'q', q: 'ping', a: {} }), to(node));
    attacker.send(encode({ t: Buffer.alloc(17, 1), y: 'q', q: 'ping', a: { id } }), to(node)); // even a valid ping
    await pingOk(attacker, node);
    expect(replies(attacker).length).toBe(1);
  });

  it('malformed datagrams that are not queries (unknown or missing y, broken responses and errors) get no reply: no error ping-pong', async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    attacker.send(encode({ t, y: 'x', a: { id } }), to(node));
    attacker.send(encode({ t, y: 'qq', q: 'ping', a: { id } }), to(node));
    attacker.send(encode({ t, q: 'ping', a: { id } }), to(node));
    attacker.send(encode({ t, y: 'r' }), to(node));
    attacker.send(encode({ t, y: 'r', r: { id: Buffer.alloc(3) } }), to(node));
    attacker.send(encode({ t, y: 'e' }), to(node));
    attacker.send(encode({ t, y: 'e', e: ['201', 'x'] }), to(node));
    await pingOk(attacker, node);
    expect(replies(attacker).length).toBe(1);
  });
});

// ---------------------------------------------------------------- spoofed and unsolicited responses

describe('spoofed and unsolicited responses', () => {
  it.each([
    ['a response', (t: Buffer) => response(t, { id: Buffer.alloc(20, 0xee) })],
    ['an error', (t: Buffer) => encode({ t, y: 'e', e: [201, 'go away'] })],
  ])('%s with the right transaction id from another port or another IP does not settle the query', async (_name, forge) => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 3_000 });
    const queried = await udp();
    const otherPort = await udp();
    // same port number as the queried node, another IP: only the host tells them apart
    const otherIp = await udp('127.0.0.2', queried.port).catch(() => udp('127.0.0.2'));
    const realId = randomBytes(20);

    const answer = node.query({ host: LOCAL, port: queried.port }, { q: 'ping', id: node.id });
    const q = await queried.next((d) => d.dict !== undefined && str(d.dict, 'q') === 'ping', 2_000, 'the ping');
    const t = tOf(q.dict!)!;
    // an on-path observer (or a guesser: ids are sequential) answers first from the wrong address
    otherPort.send(forge(t), to(node));
    otherIp.send(forge(t), to(node));
    await delay(150);
    queried.send(response(t, { id: realId }), to(node));

    const r = await within(answer, 4_000, 'the query');
    expect(r?.id).toEqual(realId);
    expect(node.table.has(Buffer.alloc(20, 0xee))).toBe(false);
    expect(node.table.entries().map((e) => `${e.host}:${e.port}`)).toEqual([`${LOCAL}:${queried.port}`]);
  });

  it('unsolicited responses (random ids, a late answer after the timeout, a duplicate answer) add nothing to the routing table', async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 100 });
    const attacker = await udp();
    const others = await Promise.all([udp(), udp('127.0.0.3')]);
    // 200 responses nobody asked for, each claiming a new id, with nodes to "teach" the node
    const fakeNodes = encodeCompactNodes(Array.from({ length: 8 }, (_, i) => ({ id: randomBytes(20), host: '127.0.0.9', port: 4000 + i })));
    for (let i = 0; i < 200; i++) {
      for (const u of [attacker, ...others]) u.send(response(tid(i), { id: randomBytes(20), nodes: fakeNodes }), to(node));
      if (i % 20 === 19) await yieldLoop();
    }
    // a real query to the attacker that it lets time out, then answers
    const late = await node.query({ host: LOCAL, port: attacker.port }, { q: 'ping', id: node.id });
    expect(late).toBeUndefined();
    const q = attacker.queries('ping')[0]!;
    attacker.send(response(tOf(q)!, { id: randomBytes(20) }), to(node));
    await delay(100);
    expect(node.table.size).toBe(0);

    // an answered query adds the responder once; a second answer with the same t and another id is unsolicited
    const firstId = randomBytes(20);
    const answered = node.query({ host: LOCAL, port: attacker.port }, { q: 'ping', id: node.id });
    await until(() => attacker.queries('ping').length === 2, 2_000, 'the second ping');
    const t2 = tOf(attacker.queries('ping')[1]!)!;
    attacker.send(response(t2, { id: firstId }), to(node));
    expect((await answered)?.id).toEqual(firstId);
    attacker.send(response(t2, { id: randomBytes(20) }), to(node));
    await delay(100);
    expect(node.table.entries().map((e) => e.id)).toEqual([firstId]);

    // and nothing the forged responses named is handed out to others
    const observer = await udp('127.0.0.4');
    const ft = tid(99);
    observer.send(query(ft, 'find_node', { id: randomBytes(20), target: randomBytes(20) }, { ro: 1 }), to(node));
    const nodes = bytesOf(body(await observer.replyTo(ft)), 'nodes')!;
    expect(nodes.length).toBe(26); // the one answered responder
    expect(nodes.subarray(0, 20)).toEqual(firstId);
  });
});

// ---------------------------------------------------------------- announce_peer tokens

describe('announce_peer tokens', () => {
  it.each([
    ['no token', (_good: Buffer, _foreign: Buffer) => undefined],
    ['an empty token', () => Buffer.alloc(0)],
    ['a random token', () => randomBytes(8)],
    ['the token cut short', (good: Buffer) => good.subarray(0, 4)],
    ['the token with a byte more', (good: Buffer) => Buffer.concat([good, Buffer.from([0])])],
    ['the token with one bit flipped', (good: Buffer) => Buffer.from(good.map((b, i) => (i === 0 ? b ^ 1 : b)))],
    ['a token issued to another IP', (_good: Buffer, foreign: Buffer) => foreign],
  ])('announce_peer with %s is refused and stores nothing', async (_name, pick) => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    const elsewhere = await udp('127.0.0.2');
    const good = await tokenFor(attacker, node, 1);
    const foreign = await tokenFor(elsewhere, node, 2);
    const token = pick(good, foreign);
    const infoHash = randomBytes(20);
    const a: Record<string, BEncodable> = { id: randomBytes(20), info_hash: infoHash, port: 6881 };
    if (token) a.token = token;
    attacker.send(query(tid(3), 'announce_peer', a), to(node));
    const reply = await attacker.replyTo(tid(3));
    expect(str(reply, 'y')).toBe('e');
    expect(errorCode(reply)).toBe(KRPC_ERROR.protocol);
    expect(node.store.hashCount).toBe(0);
    expect(await peersServed(elsewhere, node, infoHash, 4)).toBeUndefined();
  });

  it('a token from two rotations ago is refused; one from the previous rotation still works', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const node = await loopbackDhtNode();
    const attacker = await udp();
    const token = await tokenFor(attacker, node, 1);
    const [h1, h2] = [randomBytes(20), randomBytes(20)];

    vi.setSystemTime(Date.now() + TOKEN_ROTATE_MS + 1_000);
    attacker.send(announceQ(tid(2), randomBytes(20), h1, 6881, token), to(node));
    expect(str(await attacker.replyTo(tid(2)), 'y')).toBe('r');

    vi.setSystemTime(Date.now() + TOKEN_ROTATE_MS + 1_000);
    attacker.send(announceQ(tid(3), randomBytes(20), h2, 6881, token), to(node));
    const refused = await attacker.replyTo(tid(3));
    expect(errorCode(refused)).toBe(KRPC_ERROR.protocol);
    expect(node.store.values(h1, Date.now())).toHaveLength(1);
    expect(node.store.values(h2, Date.now())).toEqual([]);
  });

  it('with a valid token the source IP is stored: the given port, or the source port with implied_port; an `ip` argument is ignored', async () => {
    const node = await loopbackDhtNode();
    const announcer = await udp();
    const samePortOtherSocket = await udp();
    const observer = await udp('127.0.0.3');
    const token = await tokenFor(announcer, node, 1);
    const infoHash = randomBytes(20);

    announcer.send(announceQ(tid(2), randomBytes(20), infoHash, 6881, token, { ip: peer('1.2.3.4', 6881) }), to(node));
    expect(str(await announcer.replyTo(tid(2)), 'y')).toBe('r');
    // tokens are per IP (BEP 5): another port of the same host may use it; implied_port wins over port
    samePortOtherSocket.send(announceQ(tid(3), randomBytes(20), infoHash, 9, token, { implied_port: 1 }), to(node));
    expect(str(await samePortOtherSocket.replyTo(tid(3)), 'y')).toBe('r');

    const served = (await peersServed(observer, node, infoHash, 4))!.map((b) => b.toString('hex')).sort();
    expect(served).toEqual([peer(LOCAL, 6881), peer(LOCAL, samePortOtherSocket.port)].map((b) => b.toString('hex')).sort());
  });
});

// ---------------------------------------------------------------- floods

describe('floods', () => {
  it.each([
    ['pings', (i: number) => ping(tid(i), randomBytes(20))],
    ['malformed queries (203)', (i: number) => query(tid(i), 'ping', { id: Buffer.alloc(3) })],
    ['unknown methods (204)', (i: number) => query(tid(i), 'vote', { id: Buffer.alloc(20, 1) })],
    ['get_peers', (i: number) => getPeersQ(tid(i), randomBytes(20), randomBytes(20))],
  ])('3000 %s from one address get at most the per-address burst plus its refill; another address is still answered', async (_name, make) => {
    const node = await loopbackDhtNode();
    const flooder = await udp();
    const other = await udp('127.0.0.2');
    const start = Date.now();
    for (let i = 0; i < 3000; i++) {
      flooder.send(make(i), to(node));
      if (i % 25 === 24) await yieldLoop();
    }
    await pingOk(other, node, 1, 1_000);
    await delay(200);
    const elapsedS = (Date.now() - start) / 1000;
    const answered = replies(flooder).length;
    expect(answered).toBeGreaterThanOrEqual(ADDRESS_BURST / 2);
    expect(answered).toBeLessThanOrEqual(ADDRESS_BURST + Math.ceil(elapsedS * QUERIES_PER_ADDRESS_PER_S) + 1);
  });

  it('a flood from 30 addresses is capped by the global limit, and a fresh address is answered once it refills', async () => {
    const node = await loopbackDhtNode();
    const flooders = await Promise.all(Array.from({ length: 30 }, (_, i) => udp(`127.0.1.${i + 1}`)));
    const start = Date.now();
    for (let i = 0; i < ADDRESS_BURST; i++) {
      for (const f of flooders) f.send(ping(tid(i), randomBytes(20)), to(node));
      await yieldLoop();
    }
    await delay(200);
    const elapsedS = (Date.now() - start) / 1000;
    const answered = flooders.reduce((n, f) => n + replies(f).length, 0);
    expect(30 * ADDRESS_BURST).toBeGreaterThan(QUERIES_PER_S * 2); // the flood is worth capping
    expect(answered).toBeGreaterThanOrEqual(QUERIES_PER_S / 2);
    expect(answered).toBeLessThanOrEqual(QUERIES_PER_S + Math.ceil(elapsedS * QUERIES_PER_S) + 1);
    await delay(1_000);
    await pingOk(await udp('127.0.1.200'), node, 1, 1_000);
  });

  it(`announce_peer for ${MAX_STORED_HASHES + 160} distinct info hashes from 60 IPs keeps ${MAX_STORED_HASHES} hashes, the newest among them`, async () => {
    const node = await loopbackDhtNode();
    const IPS = 60;
    const PER_IP = Math.ceil((MAX_STORED_HASHES + 160) / IPS); // 36 announces + 1 get_peers: inside one burst each
    const announcers = await Promise.all(Array.from({ length: IPS }, (_, i) => udp(`127.0.2.${i + 1}`)));
    const tokens = await Promise.all(announcers.map((a) => tokenFor(a, node, 0xffff)));
    const sent: Array<{ u: Udp; t: Buffer; infoHash: Buffer }> = [];
    let n = 0;
    for (let round = 0; round < PER_IP; round++) {
      for (const [i, u] of announcers.entries()) {
        const infoHash = randomBytes(20);
        const t = tid(n);
        sent.push({ u, t, infoHash });
        u.send(announceQ(t, randomBytes(20), infoHash, 6881, tokens[i]!), to(node));
        n++;
        // the global bucket (QUERIES_PER_S, burst as much) refills 400 a bit faster than this
        if (n % 400 === 0) await delay(Math.ceil((400 / QUERIES_PER_S) * 1000) + 100);
        else if (n % 40 === 0) await yieldLoop();
      }
    }
    const isAccepted = (s: (typeof sent)[number]): boolean =>
      s.u.inbox.some((d) => d.dict !== undefined && tOf(d.dict)?.equals(s.t) === true && str(d.dict, 'y') === 'r');
    await until(() => sent.filter(isAccepted).length >= sent.length - 20, 5_000, 'the announces to be answered').catch(() => undefined);
    const accepted = sent.filter(isAccepted);
    expect(accepted.length).toBeGreaterThan(MAX_STORED_HASHES + 50);
    expect(node.store.hashCount).toBe(MAX_STORED_HASHES);
    expect(node.store.values(accepted.at(-1)!.infoHash, Date.now())).toHaveLength(1);
  });

  it(`announce_peer of 300 ports for one info hash keeps ${MAX_PEERS_PER_HASH} peers and serves at most ${MAX_VALUES_RETURNED}`, async () => {
    const node = await loopbackDhtNode();
    const announcers = await Promise.all(Array.from({ length: 8 }, (_, i) => udp(`127.0.3.${i + 1}`)));
    const tokens = await Promise.all(announcers.map((a) => tokenFor(a, node, 0xffff)));
    const infoHash = randomBytes(20);
    for (let i = 0; i < 300; i++) {
      const k = i % announcers.length;
      announcers[k]!.send(announceQ(tid(i), randomBytes(20), infoHash, 1000 + i, tokens[k]!), to(node));
      if (i % 20 === 19) await yieldLoop();
    }
    await until(() => announcers.reduce((s, a) => s + replies(a).length, 0) >= 8 + 300, 3_000, 'the announces to be answered');
    expect(announcers.every((a) => replies(a).every((d) => str(d.dict!, 'y') === 'r'))).toBe(true);
    const stored = node.store.values(infoHash, Date.now(), Number.MAX_SAFE_INTEGER);
    expect(stored).toHaveLength(MAX_PEERS_PER_HASH);
    // the newest stay
    expect(stored.map((b) => b.readUInt16BE(4)).sort((a, b) => a - b)[0]).toBe(1000 + 300 - MAX_PEERS_PER_HASH);
    const served = await peersServed(await udp('127.0.3.100'), node, infoHash, 1);
    expect(served).toHaveLength(MAX_VALUES_RETURNED);
  });

  it(`one IP announcing ${MAX_PEERS_PER_HASH} ports cannot evict the peers other IPs announced`, async () => {
    const node = await loopbackDhtNode();
    const honest = await udp('127.0.0.2');
    const attacker = await udp();
    const infoHash = randomBytes(20);
    honest.send(announceQ(tid(1), randomBytes(20), infoHash, 6881, await tokenFor(honest, node)), to(node));
    expect(str(await honest.replyTo(tid(1)), 'y')).toBe('r');

    // one IP, one token, MAX_PEERS_PER_HASH ports, paced to its rate limit: ~8 s
    const token = await tokenFor(attacker, node);
    let accepted = 0;
    for (let attempt = 0; attempt < 3 * MAX_PEERS_PER_HASH && accepted < MAX_PEERS_PER_HASH; attempt++) {
      const t = tid(0x10000 + attempt);
      attacker.send(announceQ(t, randomBytes(20), infoHash, 20_000 + accepted, token), to(node));
      const reply = await attacker.replyTo(t, 150).catch(() => undefined);
      if (reply && str(reply, 'y') === 'r') accepted++;
      else await delay(1000 / QUERIES_PER_ADDRESS_PER_S);
    }
    expect(accepted).toBe(MAX_PEERS_PER_HASH);
    const stored = node.store.values(infoHash, Date.now(), Number.MAX_SAFE_INTEGER).map((b) => b.toString('hex'));
    expect(stored).toContain(peer('127.0.0.2', 6881).toString('hex'));
  }, 30_000);

  it(`one IP announcing ${MAX_STORED_HASHES} info hashes cannot evict the torrents other IPs announced`, async () => {
    // the per-address rate limit runs on performance.now(): fake clock jumps stand in for the
    // ~100 s this takes in real time (MAX_STORED_HASHES announces at QUERIES_PER_ADDRESS_PER_S)
    vi.useFakeTimers({ toFake: ['performance', 'Date'], shouldAdvanceTime: true });
    const node = await loopbackDhtNode();
    const honest = await Promise.all([udp('127.0.0.2'), udp('127.0.0.3')]);
    const honestHashes = [randomBytes(20), randomBytes(20)];
    for (const [i, h] of honest.entries()) {
      h.send(announceQ(tid(1), randomBytes(20), honestHashes[i]!, 6881, await tokenFor(h, node)), to(node));
      expect(str(await h.replyTo(tid(1)), 'y')).toBe('r');
    }

    const attacker = await udp();
    const token = await tokenFor(attacker, node);
    let accepted = 0;
    for (let round = 0; round < 3 * (MAX_STORED_HASHES / ADDRESS_BURST) && accepted < MAX_STORED_HASHES; round++) {
      vi.advanceTimersByTime((ADDRESS_BURST / QUERIES_PER_ADDRESS_PER_S) * 1000); // the bucket refills
      const ts = Array.from({ length: ADDRESS_BURST }, (_, i) => tid(0x100000 + round * ADDRESS_BURST + i));
      for (const t of ts) attacker.send(announceQ(t, randomBytes(20), randomBytes(20), 6881, token), to(node));
      await until(() => ts.every((t) => attacker.inbox.some((d) => d.dict !== undefined && tOf(d.dict)?.equals(t) === true)), 1_000, 'the burst answered').catch(() => undefined);
      accepted += ts.filter((t) => attacker.inbox.some((d) => d.dict !== undefined && tOf(d.dict)?.equals(t) === true && str(d.dict, 'y') === 'r')).length;
    }
    expect(accepted).toBe(MAX_STORED_HASHES);
    expect(node.store.hashCount).toBeLessThanOrEqual(MAX_STORED_HASHES);
    for (const h of honestHashes) expect(node.store.values(h, Date.now())).toHaveLength(1);
  });

  it('a new info hash announced to a full PeerStore costs no more than to an empty one (no scan of every stored peer)', async () => {
    /** Time for `n` announces of fresh info hashes from `ips` addresses to be answered. */
    const burst = async (node: DhtNode, subnet: string, n: number): Promise<number> => {
      const us = await Promise.all(Array.from({ length: Math.ceil(n / 30) }, (_, i) => udp(`${subnet}.${i + 1}`)));
      const tokens = await Promise.all(us.map((u) => tokenFor(u, node)));
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const k = i % us.length;
        us[k]!.send(announceQ(tid(i), randomBytes(20), randomBytes(20), 6881, tokens[k]!), to(node));
        if (i % 20 === 19) await yieldLoop();
      }
      await until(() => us.reduce((s, u) => s + replies(u).length, 0) >= us.length + n, 20_000, 'the announces to be answered');
      return performance.now() - t0;
    };
    const empty = await loopbackDhtNode();
    const baseline = await burst(empty, '127.0.4', 200);

    // the state anyone reaches over the wire in ~15 min from a few dozen addresses at the rate
    // limits (MAX_STORED_HASHES x MAX_PEERS_PER_HASH announces), filled directly to keep the test short
    const full = await loopbackDhtNode();
    const now = Date.now();
    for (let h = 0; h < MAX_STORED_HASHES; h++) {
      const infoHash = randomBytes(20);
      for (let p = 1; p <= MAX_PEERS_PER_HASH; p++) full.store.add(infoHash, `10.9.${h >> 8}.${h & 0xff}`, p, now);
    }
    expect(full.store.hashCount).toBe(MAX_STORED_HASHES);
    const loaded = await burst(full, '127.0.5', 200);
    expect(loaded).toBeLessThan(5 * baseline + 200);
  });
});

// ---------------------------------------------------------------- routing table poisoning

describe('routing table poisoning', () => {
  // the attackers below also answer the node's own queries with the id they claim, so they
  // get in however the node admits nodes (on their queries, or once they answer a ping)

  it(`one address claiming ${ADDRESS_BURST} different ids holds one table entry`, async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    const ids = Array.from({ length: ADDRESS_BURST }, () => randomBytes(20));
    let claimed = ids[0]!;
    attacker.answer((q) => response(tOf(q)!, { id: claimed }));
    for (const [i, id] of ids.entries()) {
      claimed = id;
      attacker.send(ping(tid(i), id), to(node));
    }
    await until(() => answersTo(attacker).length === ids.length, 2_000, 'every ping answered');
    await delay(100);
    expect(node.table.size).toBe(1);
    expect(ids).toContainEqual(node.table.entries()[0]!.id);
  });

  it(`${3 * K} ports of one IP claiming ids in one bucket get at most K entries`, async () => {
    const node = await loopbackDhtNode();
    const attackers = await Promise.all(Array.from({ length: 3 * K }, () => udp()));
    for (const [i, a] of attackers.entries()) {
      const id = randomIdInBucket(node.id, 100, randomBytes);
      a.answer((q) => response(tOf(q)!, { id }));
      a.send(ping(tid(i), id), to(node));
    }
    await until(() => attackers.every((a) => answersTo(a).length === 1), 2_000, 'every ping answered');
    await until(() => node.table.size >= K, 2_000, 'a full bucket');
    await delay(100);
    expect(node.table.size).toBe(K);
  });

  it("queries and answers claiming the node's own id are not added", async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    attacker.send(ping(tid(1), node.id), to(node));
    await attacker.replyTo(tid(1));
    attacker.answer((q) => response(tOf(q)!, { id: node.id }));
    expect((await node.query({ host: LOCAL, port: attacker.port }, { q: 'ping', id: node.id }))?.id).toEqual(node.id);
    expect(node.table.size).toBe(0);
  });

  it('read-only queriers (BEP 43 ro=1) are answered but not added', async () => {
    const node = await loopbackDhtNode();
    const attacker = await udp();
    for (let i = 0; i < 10; i++) attacker.send(query(tid(i), 'ping', { id: randomBytes(20) }, { ro: 1 }), to(node));
    await until(() => replies(attacker).length === 10, 2_000, 'every ping answered');
    expect(node.table.size).toBe(0);
  });

  it('a node that only ever sent queries (never answered one) is not handed out to others', async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 150 });
    // answers nothing; with a spoofed source address it would not even need to receive
    const silent = await udp();
    const x = randomBytes(20);
    silent.send(ping(tid(1), x), to(node));
    await silent.replyTo(tid(1));
    await delay(400); // time enough for a verifying ping to go unanswered
    const observer = await udp('127.0.0.3');
    observer.send(query(tid(2), 'find_node', { id: randomBytes(20), target: x }, { ro: 1 }), to(node));
    const nodes = bytesOf(body(await observer.replyTo(tid(2))), 'nodes') ?? Buffer.alloc(0);
    expect(nodes.length).toBe(0);
  });

  it(`${K} queriers that never answer cannot keep a node that answers out of their bucket`, async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 150 });
    // they query and answer nothing (spoofed source addresses would not even receive)
    const silent = await Promise.all(Array.from({ length: K }, () => udp()));
    for (const [i, s] of silent.entries()) s.send(ping(tid(i), randomIdInBucket(node.id, 100, randomBytes)), to(node));
    await until(() => silent.every((s) => answersTo(s).length === 1), 2_000, 'every ping answered');
    await delay(400); // any verifying ping of theirs has gone unanswered
    // a node of the same bucket that does answer, asked by us (a lookup, a PORT message)
    const honest = await udp();
    const id = randomIdInBucket(node.id, 100, randomBytes);
    honest.answer((q) => response(tOf(q)!, { id }));
    expect((await node.query({ host: LOCAL, port: honest.port }, { q: 'ping', id: node.id }))?.id).toEqual(id);
    expect(node.table.has(id)).toBe(true);
  });

  it("another address claiming a good node's id is not believed, and find_node keeps naming the owner", async () => {
    const node = await loopbackDhtNode();
    const owner = await udp();
    const claimants = await Promise.all([udp(), udp('127.0.0.2')]);
    const x = randomBytes(20);
    owner.answer((q) => response(tOf(q)!, { id: x }));
    owner.send(ping(tid(2), x), to(node));
    await owner.replyTo(tid(2));
    await until(() => node.table.has(x), 2_000, 'the owner in the table');
    for (const [i, c] of claimants.entries()) {
      c.send(ping(tid(10 + i), x), to(node));
      await c.replyTo(tid(10 + i));
    }
    // nor when it claims the id answering a query of ours
    const answering = claimants[0]!.answer((q) => response(tOf(q)!, { id: x }));
    expect((await node.query({ host: LOCAL, port: answering.port }, { q: 'ping', id: node.id }))?.id).toEqual(x);
    expect(node.table.entries().map((e) => [e.id.toString('hex'), e.port])).toEqual([[x.toString('hex'), owner.port]]);
    // ask until the owner is handed out (at once, or once the node has verified it)
    const observer = await udp('127.0.0.3');
    let nodes: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 20 && nodes.length === 0; i++) {
      observer.send(query(tid(100 + i), 'find_node', { id: randomBytes(20), target: x }, { ro: 1 }), to(node));
      nodes = bytesOf(body(await observer.replyTo(tid(100 + i))), 'nodes') ?? Buffer.alloc(0);
      if (nodes.length === 0) await delay(50);
    }
    expect(nodes.length).toBe(26);
    expect(nodes.subarray(0, 20)).toEqual(x);
    expect(nodes.readUInt16BE(24)).toBe(owner.port);
  });

  it('an id taken over after its owner missed one answer leaves the taker one entry at its address', async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 150 });
    const owner = await udp();
    const hijacker = await udp();
    const [x, y] = [randomBytes(20), randomBytes(20)];
    // the owner answers pings, not get_peers: one lost answer is enough
    owner.answer((q) => (str(q, 'q') === 'ping' ? response(tOf(q)!, { id: x }) : undefined));
    owner.send(ping(tid(1), x), to(node));
    await owner.replyTo(tid(1));
    let claimed = y;
    hijacker.answer((q) => response(tOf(q)!, { id: claimed, token: Buffer.alloc(8) }));
    hijacker.send(ping(tid(2), y), to(node));
    await hijacker.replyTo(tid(2));
    await until(() => node.table.size === 2, 2_000, 'owner and hijacker in the table');

    await within(node.getPeers(randomBytes(20)), 5_000, 'the lookup'); // the owner misses its get_peers
    expect(node.table.entries().find((e) => e.id.equals(x))?.failures).toBe(1);

    const askHijacker = (): Promise<unknown> => node.query({ host: LOCAL, port: hijacker.port }, { q: 'ping', id: node.id });
    claimed = x; // "I am x now", in a query and in an answer
    hijacker.send(ping(tid(3), x), to(node));
    await hijacker.replyTo(tid(3));
    await askHijacker();
    claimed = randomBytes(20); // and now someone else again
    hijacker.send(ping(tid(4), claimed), to(node));
    await hijacker.replyTo(tid(4));
    await askHijacker();
    await delay(100);
    const atHijacker = node.table.entries().filter((e) => e.port === hijacker.port);
    expect(atHijacker.length).toBeLessThanOrEqual(1);
  });
});

// ---------------------------------------------------------------- hostile lookups

describe('lookups against hostile responders', () => {
  /** A responder known to `node` (it pinged it), answering every query with `handler`. */
  async function responder(node: DhtNode, id: Buffer, handler: Handler, host = LOCAL, delayMs = 0): Promise<Udp> {
    const u = await udp(host);
    u.answer(handler, delayMs);
    u.send(ping(tid(0xabc), id), to(node));
    await u.replyTo(tid(0xabc));
    await until(() => node.table.entries().some((e) => e.host === u.host && e.port === u.port), 2_000, 'the responder in the table');
    return u;
  }

  /** 300 compact nodes right next to `target` (as many as fit a MAX_KRPC_BYTES datagram); nothing listens on 127.66/16. */
  function silentNodesNear(target: Buffer): Buffer {
    return encodeCompactNodes(Array.from({ length: 300 }, (_, i) => ({ id: near(target, i + 1), host: `127.66.${i >> 8}.${(i & 0xff) + 1}`, port: 6881 })));
  }

  it(`a responder naming 300 silent nodes right next to the target: getPeers ends after ${MAX_LOOKUP_QUERIES} queries`, async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 100 });
    const infoHash = randomBytes(20);
    const nodes = silentNodesNear(infoHash);
    const hostile = await responder(node, randomBytes(20), (q) => response(tOf(q)!, { id: randomBytes(20), token: Buffer.alloc(8), nodes }));
    expect(MAX_CANDIDATES).toBeGreaterThan(MAX_LOOKUP_QUERIES); // enough named to exhaust the budget
    const t0 = Date.now();
    const result = await within(node.getPeers(infoHash, { announcePort: 6881 }), 20_000, 'getPeers');
    expect(hostile.queries('get_peers')).toHaveLength(1);
    expect(result.peers).toEqual([]);
    expect(result.queried).toBe(MAX_LOOKUP_QUERIES);
    // 3 in flight, each silent one timing out: the budget, not the 30 s deadline, ended it
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('a responder naming 300 silent nodes does not push the nodes that answered out of the lookup: the announce still reaches them', async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 100 });
    const infoHash = randomBytes(20);
    const nodes = silentNodesNear(infoHash);
    const honest = await responder(node, randomBytes(20), (q) => response(tOf(q)!, { id: randomBytes(20), token: Buffer.alloc(8, 1) }));
    // answers 30 ms late: after the honest node did
    await responder(node, randomBytes(20), (q) => response(tOf(q)!, { id: randomBytes(20), token: Buffer.alloc(8, 2), nodes }), LOCAL, 30);
    const result = await within(node.getPeers(infoHash, { announcePort: 6881 }), 20_000, 'getPeers');
    expect(result.queried).toBe(MAX_LOOKUP_QUERIES); // the fakes were asked
    expect(honest.queries('announce_peer')).toHaveLength(1);
    expect(result.announcedTo).toBeGreaterThanOrEqual(1);
  });

  it(`a swarm of 200 hostile nodes that answer but never get closer: the lookup stops at ${MAX_LOOKUP_QUERIES} queries and announces to at most K`, async () => {
    const node = await loopbackDhtNode();
    const infoHash = randomBytes(20);
    const swarm = await Promise.all(Array.from({ length: 200 }, (_, i) => udp(`127.0.6.${i + 1}`)));
    const far = (): Buffer => randomIdInBucket(infoHash, 0, randomBytes);
    const named = encodeCompactNodes(swarm.map((s, i) => ({ id: near(infoHash, i + 1), host: s.host, port: s.port })));
    // every member claims, when asked, an id far from the target: the "K closest answered" never settles
    for (const s of swarm) s.answer((q) => (str(q, 'q') === 'announce_peer' ? response(tOf(q)!, { id: far() }) : response(tOf(q)!, { id: far(), token: Buffer.alloc(8, 1), nodes: named })));
    await responder(node, far(), (q) => response(tOf(q)!, { id: far(), token: Buffer.alloc(8), nodes: named }), '127.0.6.250');
    const result = await within(node.getPeers(infoHash, { announcePort: 6881 }), 20_000, 'getPeers');
    const getPeersSeen = swarm.reduce((n, s) => n + s.queries('get_peers').length, 0);
    const announcesSeen = swarm.reduce((n, s) => n + s.queries('announce_peer').length, 0);
    expect(result.queried).toBe(MAX_LOOKUP_QUERIES);
    expect(getPeersSeen).toBe(MAX_LOOKUP_QUERIES - 1);
    expect(announcesSeen).toBeLessThanOrEqual(K);
    expect(result.announcedTo).toBeLessThanOrEqual(K);
  });

  it('nodes named at unusable addresses (0.x, broadcast, multicast, port 0, the node itself) are never asked', async () => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 200 });
    const infoHash = randomBytes(20);
    const bad: Array<[string, number]> = [['0.0.0.0', 6881], ['0.1.2.3', 6881], ['255.255.255.255', 6881], ['224.0.0.1', 6881], ['239.255.255.250', 1900], ['10.0.0.1', 0], [LOCAL, node.port], ['127.0.0.2', node.port]];
    const nodes = Buffer.concat(bad.map(([host, port], i) => Buffer.concat([near(infoHash, i + 1), peer(host, port)])));
    await responder(node, randomBytes(20), (q) => response(tOf(q)!, { id: randomBytes(20), token: Buffer.alloc(8), nodes }));
    const result = await within(node.getPeers(infoHash), 10_000, 'getPeers');
    expect(result.queried).toBe(1);
  });

  it('junk values (wrong lengths, port 0, unusable addresses, non-strings, duplicates) yield only the well-formed peers', async () => {
    const node = await loopbackDhtNode();
    const infoHash = randomBytes(20);
    const good = [peer('10.1.2.3', 6881), peer('192.0.2.7', 51413)];
    const unusable = [peer('0.0.0.0', 6881), peer('255.255.255.255', 6881), peer('224.0.0.1', 6881), peer('0.1.2.3', 6881)];
    const junk: BEncodable[] = [Buffer.alloc(5, 1), Buffer.alloc(7, 1), Buffer.alloc(18, 1), peer('10.9.9.9', 0), 6881, [good[0]!], { p: good[1]! }, Buffer.alloc(0), ...unusable];
    await responder(node, randomBytes(20), (q) => response(tOf(q)!, { id: randomBytes(20), token: Buffer.alloc(8), values: [...junk, ...good, good[0]!] }));
    const seen: string[] = [];
    const result = await within(node.getPeers(infoHash, { onPeers: (ps) => seen.push(...ps.map((p) => `${p.host}:${p.port}`)) }), 10_000, 'getPeers');
    const got = result.peers.map((p) => `${p.host}:${p.port}`).sort();
    expect(got).toEqual(['10.1.2.3:6881', '192.0.2.7:51413']);
    expect(seen.sort()).toEqual(got);
  });

  it(`1000 values in one reply are capped at MAX_VALUES_PER_REPLY (${MAX_VALUES_PER_REPLY})`, async () => {
    const node = await loopbackDhtNode();
    const values = Array.from({ length: 1000 }, (_, i) => peer(`10.7.${i >> 8}.${i & 0xff}`, 1000 + i));
    let size = 0;
    await responder(node, randomBytes(20), (q) => {
      const out = response(tOf(q)!, { id: randomBytes(20), values });
      size = out.length;
      return out;
    });
    const result = await within(node.getPeers(randomBytes(20)), 10_000, 'getPeers');
    expect(size).toBeLessThanOrEqual(MAX_KRPC_BYTES);
    expect(result.peers).toHaveLength(MAX_VALUES_PER_REPLY);
  });

  const id20 = Buffer.alloc(20, 3);
  const WRONG: Array<[string, BEncodable | undefined]> = [
    ['nodes of 25 bytes', { id: id20, nodes: Buffer.alloc(25, 1) }],
    ['nodes of 27 bytes', { id: id20, nodes: Buffer.alloc(27, 1) }],
    ['nodes as a list', { id: id20, nodes: [Buffer.alloc(26, 1)] }],
    ['nodes as an integer', { id: id20, nodes: 26 }],
    ['values as a string', { id: id20, values: peer('10.0.0.1', 1) }],
    ['values as an integer', { id: id20, values: 1 }],
    ['values as a dict', { id: id20, values: { a: peer('10.0.0.1', 1) } }],
    ['an id of 19 bytes', { id: Buffer.alloc(19, 3), values: [peer('10.0.0.1', 1)] }],
    ['an id of 21 bytes', { id: Buffer.alloc(21, 3) }],
    ['an id as an integer', { id: 3 }],
    ['no id', { values: [peer('10.0.0.1', 1)] }],
    ['a token as an integer', { id: id20, token: 8 }],
    ['a token of 65 bytes', { id: id20, token: Buffer.alloc(65) }],
    ['r as a list', [id20]],
    ['no r at all', undefined],
  ];

  it.each(WRONG)('an answer with %s counts as a failure, not an answer', async (_name, r) => {
    const node = await loopbackDhtNode({ queryTimeoutMs: 150 });
    const myId = randomBytes(20);
    const hostile = await responder(node, myId, (q) => (str(q, 'q') === 'ping' ? response(tOf(q)!, { id: myId }) : encode({ t: tOf(q)!, y: 'r', ...(r === undefined ? {} : { r }) })));
    const result = await within(node.getPeers(randomBytes(20)), 5_000, 'getPeers');
    expect(hostile.queries('get_peers')).toHaveLength(1);
    expect(hostile.inbox.filter((d) => d.dict && str(d.dict, 'y') === 'e')).toEqual([]); // no error bounced at a response
    expect(result.peers).toEqual([]);
    expect(node.table.entries().map((e) => [e.id.toString('hex'), e.failures])).toEqual([[myId.toString('hex'), 1]]);
    // and a direct query gets undefined too
    expect(await node.query({ host: LOCAL, port: hostile.port }, { q: 'get_peers', id: node.id, infoHash: randomBytes(20) })).toBeUndefined();
    await pingOk(hostile, node);
  });
});

// ---------------------------------------------------------------- the clock

describe('the clock', () => {
  it('a wall-clock step back of a minute does not make the node deaf', async () => {
    const node = await loopbackDhtNode();
    const a = await udp();
    await pingOk(a, node, 1);
    // NTP, a VM resume or an admin moves the wall clock back; no attacker needed
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() - 60_000);
    await pingOk(await udp('127.0.0.2'), node, 2, 1_000);
  });
});
