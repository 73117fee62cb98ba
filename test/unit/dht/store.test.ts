/**
 * What a DHT node stores for others (BEP 5). PeerStore: announced peers come
 * back as 6-byte compact values, expire after PEER_TTL_MS unless re-announced,
 * are capped per info hash (the oldest announce dropped) and in info hashes
 * (expired ones first, then the one announced longest ago), get_peers values
 * are a capped random subset, and non-IPv4 hosts or port 0 are refused.
 * TokenIssuer: a write token is bound to the requester's IP, survives one
 * secret rotation, and is refused after two rotations, after a long pause,
 * and once it is more than ten minutes (2 x TOKEN_ROTATE_MS) old.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_HASHES_PER_HOST,
  MAX_PEERS_PER_HASH,
  MAX_STORED_HASHES,
  MAX_VALUES_RETURNED,
  PEER_TTL_MS,
  PeerStore,
  TOKEN_BYTES,
  TOKEN_ROTATE_MS,
  TokenIssuer,
} from '../../../src/dht/store.js';

const hash = (n: number): Buffer => {
  const b = Buffer.alloc(20, 0xee);
  b.writeUInt32BE(n, 0);
  return b;
};
const H = hash(1);
/** The compact value of 10.0.x.y:port, built by hand. */
const compact = (i: number, port = 6881): string =>
  Buffer.from([10, 0, (i >> 8) & 255, i & 255, port >> 8, port & 255]).toString('hex');
const host = (i: number): string => `10.0.${(i >> 8) & 255}.${i & 255}`;
const hexes = (values: Buffer[]): string[] => values.map((v) => v.toString('hex'));
const ALL = Number.MAX_SAFE_INTEGER;

describe('PeerStore', () => {
  it('stores announced peers as 6-byte compact values, once each, per info hash', () => {
    const s = new PeerStore();
    expect(s.values(H, 0)).toEqual([]);
    expect(s.add(H, '10.0.0.1', 6881, 0)).toBe(true);
    expect(s.add(H, '10.0.0.2', 51413, 0)).toBe(true);
    expect(s.add(H, '10.0.0.1', 6881, 5)).toBe(true); // re-announce: no duplicate
    expect(s.add(H, '10.0.0.1', 6882, 5)).toBe(true); // another port: another peer
    expect(s.add(hash(2), '10.0.0.9', 1, 5)).toBe(true);
    expect(hexes(s.values(H, 10)).sort()).toEqual([compact(1), compact(1, 6882), compact(2, 51413)].sort());
    expect(hexes(s.values(hash(2), 10))).toEqual([compact(9, 1)]);
    expect(s.values(hash(3), 10)).toEqual([]);
    expect(s.hashCount).toBe(2);
    for (const v of s.values(H, 10)) expect(v).toHaveLength(6);
  });

  it('refuses non-IPv4 hosts and bad ports', () => {
    const s = new PeerStore();
    for (const [h, p] of [
      ['::1', 6881],
      ['2001:db8::1', 6881],
      ['::ffff:10.0.0.1', 6881],
      ['example.com', 6881],
      ['10.0.0.1', 0],
      ['10.0.0.1', 65536],
      ['10.0.0.1', -1],
      ['10.0.0.256', 1],
    ] as const) {
      expect(s.add(H, h, p, 0), `${h}:${p}`).toBe(false);
    }
    expect(s.hashCount).toBe(0);
    expect(s.values(H, 0)).toEqual([]);
  });

  it(`forgets a peer PEER_TTL_MS (${PEER_TTL_MS} ms) after its last announce`, () => {
    const s = new PeerStore();
    s.add(H, host(1), 6881, 0);
    s.add(H, host(2), 6881, 0);
    s.add(H, host(2), 6881, 1000); // re-announced later: lives longer
    expect(hexes(s.values(H, PEER_TTL_MS - 1)).sort()).toEqual([compact(1), compact(2)]);
    expect(hexes(s.values(H, PEER_TTL_MS))).toEqual([compact(2)]);
    expect(s.values(H, PEER_TTL_MS + 1000)).toEqual([]);
    // an info hash with no live peer left is dropped entirely
    expect(s.hashCount).toBe(0);
  });

  it('expire() drops expired peers and empty info hashes', () => {
    const s = new PeerStore();
    s.add(hash(1), host(1), 1, 0);
    s.add(hash(2), host(2), 1, 0);
    s.add(hash(2), host(3), 1, 100);
    s.expire(PEER_TTL_MS);
    expect(s.hashCount).toBe(1);
    expect(s.values(hash(1), PEER_TTL_MS)).toEqual([]);
    expect(hexes(s.values(hash(2), PEER_TTL_MS))).toEqual([compact(3, 1)]);
    s.expire(PEER_TTL_MS + 100);
    expect(s.hashCount).toBe(0);
  });

  it('a full peer list makes room from the address holding the most entries: one IP cannot push out the others', () => {
    const s = new PeerStore();
    for (let i = 0; i < 10; i++) s.add(H, host(i), 6881, i);
    // one address announces port after port, long after the others
    for (let p = 1; p <= 3 * MAX_PEERS_PER_HASH; p++) s.add(H, '10.9.9.9', p, 100 + p);
    const ports = new Map<string, number[]>();
    for (const v of s.values(H, 1_000, ALL)) {
      const key = `${v[0]}.${v[1]}.${v[2]}.${v[3]}`;
      ports.set(key, [...(ports.get(key) ?? []), v.readUInt16BE(4)]);
    }
    for (let i = 0; i < 10; i++) expect(ports.get(host(i)), host(i)).toEqual([6881]);
    // the flooder kept its newest announces in the room that was left
    const flood = (ports.get('10.9.9.9') ?? []).sort((a, b) => a - b);
    expect(flood).toHaveLength(MAX_PEERS_PER_HASH - 10);
    expect(flood[0]).toBe(3 * MAX_PEERS_PER_HASH - (MAX_PEERS_PER_HASH - 10) + 1);
  });

  it(`keeps at most MAX_PEERS_PER_HASH (${MAX_PEERS_PER_HASH}) per info hash, dropping the oldest announce`, () => {
    const s = new PeerStore();
    for (let i = 0; i < MAX_PEERS_PER_HASH; i++) s.add(H, host(i), 6881, i);
    s.add(H, host(0), 6881, 1000); // peer 0 announces again: now the newest
    for (let i = MAX_PEERS_PER_HASH; i < MAX_PEERS_PER_HASH + 10; i++) s.add(H, host(i), 6881, 1000 + i);
    const got = new Set(hexes(s.values(H, 2000, ALL)));
    expect(got.size).toBe(MAX_PEERS_PER_HASH);
    expect(got.has(compact(0))).toBe(true);
    for (let i = 1; i <= 10; i++) expect(got.has(compact(i)), `peer ${i}`).toBe(false);
    for (let i = 11; i < MAX_PEERS_PER_HASH + 10; i++) expect(got.has(compact(i)), `peer ${i}`).toBe(true);
  });

  it(`get_peers values: at most MAX_VALUES_RETURNED (${MAX_VALUES_RETURNED}), a random subset, no duplicates`, () => {
    const s = new PeerStore();
    const stored = MAX_PEERS_PER_HASH;
    for (let i = 0; i < stored; i++) s.add(H, host(i), 6881, 0);
    const all = new Set(Array.from({ length: stored }, (_, i) => compact(i)));
    const union = new Set<string>();
    const firsts = new Set<string>();
    for (let call = 0; call < 30; call++) {
      const v = hexes(s.values(H, 1));
      expect(v).toHaveLength(MAX_VALUES_RETURNED);
      expect(new Set(v).size).toBe(v.length);
      for (const x of v) {
        expect(all.has(x)).toBe(true);
        union.add(x);
      }
      firsts.add(v[0]!);
    }
    // 30 random draws of 50 cover nearly everything; a fixed prefix would give exactly 50
    expect(union.size).toBeGreaterThan(Math.min(stored - 5, MAX_VALUES_RETURNED + 20));
    expect(firsts.size).toBeGreaterThan(10);
    expect(s.values(H, 1, 7)).toHaveLength(7);
    expect(s.values(H, 1, ALL)).toHaveLength(stored);
  });

  it(`one address holds peers under at most MAX_HASHES_PER_HOST (${MAX_HASHES_PER_HOST}) hashes: flooding new hashes evicts only its own`, () => {
    const s = new PeerStore();
    for (let i = 0; i < 50; i++) s.add(hash(100_000 + i), host(i), 6881, 0);
    const flooder = '10.200.0.1';
    for (let i = 0; i < MAX_STORED_HASHES + 500; i++) s.add(hash(i), flooder, 6881, 1 + i);
    // every torrent the others announced is still there
    for (let i = 0; i < 50; i++) expect(s.values(hash(100_000 + i), 10_000), `honest ${i}`).toHaveLength(1);
    // the flooder keeps only its newest MAX_HASHES_PER_HOST
    const kept = Array.from({ length: MAX_STORED_HASHES + 500 }, (_, i) => s.values(hash(i), 10_000).length).filter((n) => n > 0);
    expect(kept).toHaveLength(MAX_HASHES_PER_HOST);
    expect(s.values(hash(MAX_STORED_HASHES + 499), 10_000)).toHaveLength(1);
    expect(s.hashCount).toBe(50 + MAX_HASHES_PER_HOST);
    // a host's other peers under the same hash are untouched by its own eviction
    s.add(hash(100_000), flooder, 7000, 20_000);
    expect(s.values(hash(100_000), 20_001)).toHaveLength(2);
  });

  it(`keeps at most MAX_STORED_HASHES (${MAX_STORED_HASHES}) info hashes; a new one evicts the oldest`, () => {
    const s = new PeerStore();
    // each from its own address (one address holds at most MAX_HASHES_PER_HOST)
    for (let i = 0; i < MAX_STORED_HASHES; i++) expect(s.add(hash(i), host(i), 1, i)).toBe(true);
    expect(s.hashCount).toBe(MAX_STORED_HASHES);
    expect(s.add(hash(MAX_STORED_HASHES), host(MAX_STORED_HASHES), 1, MAX_STORED_HASHES)).toBe(true);
    expect(s.hashCount).toBe(MAX_STORED_HASHES);
    expect(s.values(hash(0), MAX_STORED_HASHES)).toEqual([]);
    expect(s.values(hash(1), MAX_STORED_HASHES)).toHaveLength(1);
    expect(s.values(hash(MAX_STORED_HASHES), MAX_STORED_HASHES)).toHaveLength(1);
    // more peers for a stored hash never evict anything
    s.add(hash(1), host(MAX_STORED_HASHES + 1), 1, MAX_STORED_HASHES + 1);
    expect(s.hashCount).toBe(MAX_STORED_HASHES);
  });

  it('a full store evicts in O(1) the hash announced longest ago, which (equal TTLs) is the first to expire', () => {
    const s = new PeerStore();
    s.add(hash(0), host(0), 1, 0); // announced first: expires first
    for (let i = 1; i < MAX_STORED_HASHES; i++) s.add(hash(i), host(i), 1, PEER_TTL_MS / 2);
    s.add(hash(MAX_STORED_HASHES), host(MAX_STORED_HASHES), 1, PEER_TTL_MS);
    expect(s.hashCount).toBe(MAX_STORED_HASHES);
    expect(s.values(hash(0), PEER_TTL_MS)).toEqual([]);
    // every live hash survived
    for (let i = 1; i <= MAX_STORED_HASHES; i += 199) expect(s.values(hash(i), PEER_TTL_MS), `hash ${i}`).toHaveLength(1);
  });

  it('a full store evicts the info hash announced longest ago, not the one first stored', () => {
    const s = new PeerStore();
    for (let i = 0; i < MAX_STORED_HASHES; i++) s.add(hash(i), host(i), 1, i);
    // hash 0 was stored first but has just been announced again; hash 1 is now the stalest
    s.add(hash(0), host(MAX_STORED_HASHES + 1), 1, 10_000);
    s.add(hash(MAX_STORED_HASHES), host(MAX_STORED_HASHES + 2), 1, 10_001);
    expect(s.values(hash(0), 10_002)).toHaveLength(2);
    expect(s.values(hash(1), 10_002)).toEqual([]);
  });
});

describe('TokenIssuer', () => {
  const T0 = 1_000_000;
  const IP = '198.51.100.7';

  it(`issues ${TOKEN_BYTES}-byte tokens bound to the requester's IP`, () => {
    const tokens = new TokenIssuer(T0);
    const tok = tokens.issue(IP, T0);
    expect(tok).toHaveLength(TOKEN_BYTES);
    expect(tokens.valid(tok, IP, T0)).toBe(true);
    expect(tokens.issue(IP, T0 + 10)).toEqual(tok); // same secret, same IP: same token
    expect(tokens.valid(tok, '198.51.100.8', T0)).toBe(false);
    expect(tokens.valid(tokens.issue('198.51.100.8', T0), IP, T0)).toBe(false);
    const forged = Buffer.from(tok);
    forged[0]! ^= 1;
    expect(tokens.valid(forged, IP, T0)).toBe(false);
    expect(tokens.valid(Buffer.alloc(0), IP, T0)).toBe(false);
    expect(tokens.valid(tok.subarray(0, 4), IP, T0)).toBe(false);
    // another node's secret: its tokens are not ours
    expect(new TokenIssuer(T0).valid(tok, IP, T0)).toBe(false);
  });

  it('a token survives one rotation of the secret', () => {
    const tokens = new TokenIssuer(T0);
    const tok = tokens.issue(IP, T0);
    expect(tokens.valid(tok, IP, T0 + TOKEN_ROTATE_MS - 1)).toBe(true);
    expect(tokens.valid(tok, IP, T0 + TOKEN_ROTATE_MS)).toBe(true); // rotated: the previous secret still counts
    const fresh = tokens.issue(IP, T0 + TOKEN_ROTATE_MS);
    expect(fresh).not.toEqual(tok);
    expect(tokens.valid(fresh, IP, T0 + TOKEN_ROTATE_MS)).toBe(true);
    expect(tokens.valid(tok, IP, T0 + 2 * TOKEN_ROTATE_MS - 1)).toBe(true);
  });

  it('a token is refused after two rotations', () => {
    const tokens = new TokenIssuer(T0);
    const tok = tokens.issue(IP, T0);
    expect(tokens.valid(tok, IP, T0 + TOKEN_ROTATE_MS)).toBe(true);
    expect(tokens.valid(tok, IP, T0 + 2 * TOKEN_ROTATE_MS)).toBe(false);
    // the one issued after the first rotation is still good after the second
    const tokens2 = new TokenIssuer(T0);
    const mid = tokens2.issue(IP, T0 + TOKEN_ROTATE_MS);
    expect(tokens2.valid(mid, IP, T0 + 2 * TOKEN_ROTATE_MS)).toBe(true);
    expect(tokens2.valid(mid, IP, T0 + 3 * TOKEN_ROTATE_MS)).toBe(false);
  });

  it('a token is refused after a long pause (no call in between to rotate the secret)', () => {
    const tokens = new TokenIssuer(T0);
    const tok = tokens.issue(IP, T0);
    expect(tokens.valid(tok, IP, T0 + 2 * TOKEN_ROTATE_MS)).toBe(false);
    const tokens2 = new TokenIssuer(T0);
    const tok2 = tokens2.issue(IP, T0);
    expect(tokens2.valid(tok2, IP, T0 + 24 * 3600_000)).toBe(false);
  });

  it('a token more than ten minutes (2 x TOKEN_ROTATE_MS) old is refused, however the calls fall', () => {
    // BEP 5: "a secret that changes every five minutes and tokens up to ten minutes old are accepted"
    const tokens = new TokenIssuer(T0);
    const tok = tokens.issue(IP, T0);
    // a call late in the second period rotates the secret then, not at T0 + TOKEN_ROTATE_MS ...
    expect(tokens.valid(tok, IP, T0 + 1.9 * TOKEN_ROTATE_MS)).toBe(true);
    // ... which must not stretch the life of tokens issued at T0 past ten minutes
    expect(tokens.valid(tok, IP, T0 + 2.5 * TOKEN_ROTATE_MS)).toBe(false);
  });
});
