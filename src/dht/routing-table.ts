/**
 * The DHT routing table (BEP 5): node ids, XOR distance, and 160 buckets of
 * at most K nodes, bucket i holding the nodes whose id shares exactly i
 * leading bits with ours. Good nodes stay; a full bucket takes a newcomer only
 * in place of a node that stopped answering. Bounded (160 x K entries). Pure:
 * time comes in as an argument.
 */
import { NODE_ID_BYTES, type CompactNode } from './krpc.js';

/** Nodes per bucket (BEP 5). */
export const K = 8;
export const BUCKETS = NODE_ID_BYTES * 8;
/** A node not heard from for this long is "questionable" (BEP 5). */
export const QUESTIONABLE_AFTER_MS = 15 * 60_000;
/** Unanswered queries in a row after which a node is dropped. */
export const MAX_FAILURES = 3;
/** An unverified node is pinged at most this often. */
export const VERIFY_PING_INTERVAL_MS = 60_000;

export interface TableEntry {
  readonly id: Buffer;
  readonly host: string;
  readonly port: number;
  /** When the node last answered a query of ours or sent us one. */
  lastSeen: number;
  /** Queries in a row it did not answer. */
  failures: number;
  /** It has answered a query of ours (from this address): only verified nodes are handed to others. */
  verified: boolean;
  /** When we last pinged it to verify it (-Infinity: never). */
  verifyPingAt: number;
}

/** a XOR b, as a 20-byte buffer. */
export function distance(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(NODE_ID_BYTES);
  for (let i = 0; i < NODE_ID_BYTES; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Negative when `a` is closer to `target` than `b`, 0 when equally close. */
export function compareDistance(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < NODE_ID_BYTES; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

/** Leading bits `a` and `b` share: 0..160 (160 only when equal). */
export function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < NODE_ID_BYTES; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return BUCKETS;
}

/** A random id sharing exactly `bits` leading bits with `own` (for refreshing bucket `bits`). */
export function randomIdInBucket(own: Uint8Array, bits: number, random: (n: number) => Buffer): Buffer {
  const id = random(NODE_ID_BYTES);
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) id[i] = own[i]!;
  if (bits < BUCKETS) {
    const byte = whole;
    const rest = bits % 8;
    const keepMask = (0xff << (8 - rest)) & 0xff;
    const flip = 0x80 >> rest;
    id[byte] = (own[byte]! & keepMask) | ((~own[byte]! & flip) & 0xff) | (id[byte]! & ~(keepMask | flip) & 0xff);
  }
  return id;
}

function oldestUnverified(bucket: readonly TableEntry[]): TableEntry | undefined {
  let oldest: TableEntry | undefined;
  for (const e of bucket) if (!e.verified && (!oldest || e.lastSeen < oldest.lastSeen)) oldest = e;
  return oldest;
}

function addressKey(host: string, port: number): string {
  return `${host}:${port}`;
}

export class RoutingTable {
  readonly ownId: Buffer;
  readonly #buckets: TableEntry[][] = Array.from({ length: BUCKETS }, () => []);
  /** address -> id of its entry: one entry per address */
  readonly #byAddress = new Map<string, Buffer>();
  #size = 0;

  constructor(ownId: Buffer) {
    if (ownId.length !== NODE_ID_BYTES) throw new RangeError('node id must be 20 bytes');
    this.ownId = ownId;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * A node answered us (`verified`) or queried us (not verified: its source
   * address may be forged): add it or refresh it. A full bucket makes room,
   * for a verified node only, by dropping a node that has failed a query and
   * not been seen for QUESTIONABLE_AFTER_MS, or has failed MAX_FAILURES times,
   * or else the longest-silent unverified node.
   * Returns whether the node is in the table afterwards.
   */
  seen(node: CompactNode, now: number, verified = true): boolean {
    if (node.id.length !== NODE_ID_BYTES || node.id.equals(this.ownId)) return false;
    const bucket = this.#buckets[commonPrefixBits(this.ownId, node.id)]!;
    const existing = bucket.find((e) => e.id.equals(node.id));
    if (existing) {
      // an id that moved to another address is not believed (it could be anyone claiming it)
      if (existing.host !== node.host || existing.port !== node.port) {
        if (existing.failures === 0 || !verified) return false;
        // the failing id moves: whatever else sat at its new address goes (one entry per address)
        const other = this.#byAddress.get(addressKey(node.host, node.port));
        if (other) this.remove(other);
        return this.#replace(bucket, existing, node, now);
      }
      // a query (its source may be forged) does not keep a failing node looking alive
      if (verified || existing.failures === 0) existing.lastSeen = now;
      if (verified) {
        existing.failures = 0;
        existing.verified = true;
      }
      return true;
    }
    // one entry per address: a node that changed its id replaces its old entry
    const sameAddress = this.#byAddress.get(addressKey(node.host, node.port));
    if (sameAddress) {
      // an address changes its id only by answering from it
      if (!verified) return false;
      this.remove(sameAddress);
    }
    if (bucket.length < K) {
      bucket.push({ id: node.id, host: node.host, port: node.port, lastSeen: now, failures: 0, verified, verifyPingAt: -Infinity });
      this.#byAddress.set(addressKey(node.host, node.port), node.id);
      this.#size++;
      return true;
    }
    const stale = bucket.find(
      (e) => e.failures >= MAX_FAILURES || (e.failures > 0 && now - e.lastSeen >= QUESTIONABLE_AFTER_MS),
    );
    if (!verified) return false;
    // a node that answered outranks one that only ever queried us (its address may be forged)
    const replaceable = stale ?? oldestUnverified(bucket);
    return replaceable ? this.#replace(bucket, replaceable, node, now) : false;
  }

  isVerified(id: Buffer): boolean {
    return this.#find(id)?.verified ?? false;
  }

  /**
   * True when `id` is in the table unverified and was not pinged within
   * VERIFY_PING_INTERVAL_MS (the caller pings it now: this records that).
   */
  shouldVerify(id: Buffer, now: number): boolean {
    const e = this.#find(id);
    if (!e || e.verified || now - e.verifyPingAt < VERIFY_PING_INTERVAL_MS) return false;
    e.verifyPingAt = now;
    return true;
  }

  #find(id: Buffer): TableEntry | undefined {
    if (id.length !== NODE_ID_BYTES) return undefined;
    return this.#buckets[commonPrefixBits(this.ownId, id)]?.find((x) => x.id.equals(id));
  }

  /** A query to `id` went unanswered: count it; drop the node after MAX_FAILURES. */
  failed(id: Buffer): void {
    if (id.length !== NODE_ID_BYTES) return;
    const bucket = this.#buckets[commonPrefixBits(this.ownId, id)];
    const e = bucket?.find((x) => x.id.equals(id));
    if (!e) return;
    e.failures++;
    if (e.failures >= MAX_FAILURES) this.remove(id);
  }

  remove(id: Buffer): void {
    if (id.length !== NODE_ID_BYTES) return;
    const bucket = this.#buckets[commonPrefixBits(this.ownId, id)];
    const at = bucket?.findIndex((x) => x.id.equals(id)) ?? -1;
    if (bucket && at >= 0) {
      const [gone] = bucket.splice(at, 1);
      if (gone) this.#byAddress.delete(addressKey(gone.host, gone.port));
      this.#size--;
    }
  }

  has(id: Buffer): boolean {
    const bucket = this.#buckets[commonPrefixBits(this.ownId, id)];
    return bucket?.some((x) => x.id.equals(id)) ?? false;
  }

  /**
   * The `count` known nodes closest to `target`, closest first (failing ones
   * last). `goodOnly`: verified nodes with no failure (what we tell others).
   */
  closest(target: Uint8Array, count = K, goodOnly = false): TableEntry[] {
    const all: TableEntry[] = [];
    for (const b of this.#buckets) for (const e of b) if (!goodOnly || (e.verified && e.failures === 0)) all.push(e);
    all.sort((a, b) => (a.failures > 0 ? 1 : 0) - (b.failures > 0 ? 1 : 0) || compareDistance(target, a.id, b.id));
    return all.slice(0, count);
  }

  /** Every entry (for tests and stats). */
  entries(): TableEntry[] {
    return this.#buckets.flat();
  }

  /** Indices of non-empty buckets whose nodes were all last seen before `before` (refresh candidates). */
  staleBuckets(before: number): number[] {
    const out: number[] = [];
    this.#buckets.forEach((b, i) => {
      if (b.length > 0 && b.every((e) => e.lastSeen < before)) out.push(i);
    });
    return out;
  }

  #replace(bucket: TableEntry[], old: TableEntry, node: CompactNode, now: number): boolean {
    const at = bucket.indexOf(old);
    const sameBucket = commonPrefixBits(this.ownId, node.id) === commonPrefixBits(this.ownId, old.id);
    if (at < 0 || !sameBucket) return false;
    this.#byAddress.delete(addressKey(old.host, old.port));
    bucket[at] = { id: node.id, host: node.host, port: node.port, lastSeen: now, failures: 0, verified: true, verifyPingAt: -Infinity };
    this.#byAddress.set(addressKey(node.host, node.port), node.id);
    return true;
  }
}
