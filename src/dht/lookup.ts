/**
 * An iterative DHT lookup (BEP 5, Kademlia): ask the closest known nodes for
 * the target, add the closer nodes they name, keep ALPHA queries in flight,
 * and stop when the K closest nodes that answered have all been asked (or the
 * query budget is spent). Collects get_peers values and the tokens needed to
 * announce. Pure state machine: the caller sends the queries it hands out and
 * reports each answer or timeout.
 */
import { NODE_ID_BYTES, type CompactNode, type DhtPeer } from './krpc.js';
import { compareDistance, K } from './routing-table.js';

/** Queries in flight at once (BEP 5 / Kademlia alpha). */
export const ALPHA = 3;
/** Most queries one lookup sends: a hostile or huge network cannot keep it going. */
export const MAX_LOOKUP_QUERIES = 160;
/** Most candidates remembered (the closest are kept). */
export const MAX_CANDIDATES = 200;

export interface Contact {
  readonly host: string;
  readonly port: number;
  /** Unknown for a bootstrap address until it answers. */
  readonly id?: Buffer | undefined;
}

type State = 'new' | 'pending' | 'answered' | 'failed';

interface Candidate {
  host: string;
  port: number;
  id: Buffer | undefined;
  state: State;
  token: Buffer | undefined;
}

export interface AnnounceTarget {
  readonly host: string;
  readonly port: number;
  readonly id: Buffer;
  readonly token: Buffer;
}

function key(host: string, port: number): string {
  return `${host}:${port}`;
}

export class Lookup {
  readonly target: Buffer;
  readonly #k: number;
  readonly #alpha: number;
  readonly #maxQueries: number;
  readonly #byKey = new Map<string, Candidate>();
  /** Every address queried, kept after the candidate list forgets it: nobody is asked twice. */
  readonly #asked = new Set<string>();
  /** Sorted closest first; candidates without a known id come first (they are asked at once). */
  #sorted: Candidate[] = [];
  #inFlight = 0;
  #queries = 0;
  readonly #peers = new Map<string, DhtPeer>();
  readonly #ignore: (host: string, port: number) => boolean;

  constructor(
    target: Buffer,
    seeds: readonly Contact[],
    opts: { k?: number; alpha?: number; maxQueries?: number; ignore?: (host: string, port: number) => boolean } = {},
  ) {
    if (target.length !== NODE_ID_BYTES) throw new RangeError('lookup target must be 20 bytes');
    this.target = target;
    this.#k = opts.k ?? K;
    this.#alpha = opts.alpha ?? ALPHA;
    this.#maxQueries = opts.maxQueries ?? MAX_LOOKUP_QUERIES;
    this.#ignore = opts.ignore ?? (() => false);
    this.#add(seeds);
  }

  get queriesSent(): number {
    return this.#queries;
  }

  /** Peers collected so far (get_peers values), without duplicates. */
  get peers(): DhtPeer[] {
    return [...this.#peers.values()];
  }

  /**
   * The contacts to query now (marked pending). Empty when enough are in
   * flight, or when the lookup is done.
   */
  next(): Contact[] {
    const out: Contact[] = [];
    if (this.done) return out;
    let answeredSeen = 0;
    for (const c of this.#sorted) {
      if (this.#inFlight >= this.#alpha || this.#queries >= this.#maxQueries) break;
      if (c.state === 'answered') {
        answeredSeen++;
        if (answeredSeen >= this.#k) break; // the K closest answered: nothing beyond them matters
        continue;
      }
      if (c.state !== 'new') continue;
      c.state = 'pending';
      this.#asked.add(key(c.host, c.port));
      this.#inFlight++;
      this.#queries++;
      out.push({ host: c.host, port: c.port, id: c.id });
    }
    return out;
  }

  /** True when nothing is in flight and nothing worth asking is left. */
  get done(): boolean {
    if (this.#inFlight > 0) return false;
    if (this.#queries >= this.#maxQueries) return true;
    let answered = 0;
    for (const c of this.#sorted) {
      if (c.state === 'answered' && ++answered >= this.#k) return true;
      if (c.state === 'new') return false;
    }
    return true;
  }

  /** `contact` answered: it is a live node with `id`; it named `nodes`, maybe `values` and a `token`. */
  answered(host: string, port: number, id: Buffer, nodes: readonly CompactNode[], values?: readonly DhtPeer[], token?: Buffer): void {
    const c = this.#byKey.get(key(host, port));
    if (!c || c.state !== 'pending') return;
    this.#inFlight--;
    c.state = 'answered';
    if (!c.id || !c.id.equals(id)) {
      c.id = id;
      this.#sort();
    }
    c.token = token;
    for (const p of values ?? []) this.#peers.set(key(p.host, p.port), p);
    this.#add(nodes);
  }

  /** The query to `contact` timed out or was refused. */
  failed(host: string, port: number): void {
    const c = this.#byKey.get(key(host, port));
    if (!c || c.state !== 'pending') return;
    this.#inFlight--;
    c.state = 'failed';
  }

  /** The K closest nodes that answered with a token: where announce_peer goes. */
  announceTargets(): AnnounceTarget[] {
    const out: AnnounceTarget[] = [];
    for (const c of this.#sorted) {
      if (c.state !== 'answered' || !c.id) continue;
      if (c.token) out.push({ host: c.host, port: c.port, id: c.id, token: c.token });
      if (out.length >= this.#k) break;
    }
    return out;
  }

  #add(contacts: readonly Contact[]): void {
    let added = false;
    for (const n of contacts) {
      if (this.#ignore(n.host, n.port)) continue;
      const k = key(n.host, n.port);
      if (this.#byKey.has(k) || this.#asked.has(k)) continue;
      const c: Candidate = { host: n.host, port: n.port, id: n.id, state: 'new', token: undefined };
      this.#byKey.set(k, c);
      this.#sorted.push(c);
      added = true;
    }
    if (!added) return;
    this.#sort();
    // keep the closest; drop the farthest not yet asked (or failed). Nodes that answered stay,
    // whatever is named after them: they hold the tokens the announce needs (at most
    // maxQueries of them, so the list stays bounded)
    while (this.#sorted.length > MAX_CANDIDATES) {
      const at = this.#sorted.findLastIndex((c) => c.state === 'new' || c.state === 'failed');
      if (at < 0) break;
      const [gone] = this.#sorted.splice(at, 1);
      if (gone) this.#byKey.delete(key(gone.host, gone.port));
    }
  }

  #sort(): void {
    this.#sorted.sort((a, b) => {
      if (!a.id || !b.id) return (a.id ? 1 : 0) - (b.id ? 1 : 0);
      return compareDistance(this.target, a.id, b.id);
    });
  }
}
