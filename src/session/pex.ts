/**
 * Peer exchange pacing for one connection (BEP 11 over wire/pex.ts), in two
 * halves. PexInbox, the receiving side, is all a magnet's metadata phase
 * needs: whether a message the peer sent comes too soon, and how many peers
 * one connection may still add to the pool. PexPacer adds the sending side
 * for a download's connections: when we may send the next ut_pex message and
 * what it says (the peers added and dropped since the last one we sent this
 * peer). Pure: the caller supplies the clock, the pool and the set of peers
 * it is connected to. sendPex is a download's sending round over its
 * connections (PexConnection: the few fields of the session's PeerState it
 * reads), telling each who pexPeers says we are connected to.
 */
import { ProtocolError } from '../core/errors.js';
import type { PeerAddress } from '../core/peer-address.js';
import type { PeerConnection } from '../peer/connection.js';
import { MAX_PEX_SEND, PEX_ENCRYPTION, PEX_REACHABLE, PEX_SEED, encodePex, parsePex, type PexPeer } from '../wire/pex.js';

/** One message a minute, as BEP 11 asks and libtorrent enforces (it disconnects faster senders). */
export const PEX_INTERVAL_MS = 60_000;
/** Messages from a peer closer together than this are ignored (libtorrent's first one follows its handshake). */
export const PEX_MIN_GAP_MS = 20_000;
/** Ignored (too early) messages tolerated before the connection is closed as a flood. */
export const MAX_EARLY_PEX = 5;
/** Peers one connection may add to our pool over its life (libtorrent's max_pex_peers): a liar cannot fill it alone. */
export const MAX_PEX_LEARNED = 200;

/** What one used ut_pex message gave: how many peers it named, and how many of them were new to the pool. */
export interface PexLearned {
  named: number;
  fresh: number;
}

/** The receiving side of one connection's peer exchange. */
export class PexInbox {
  #receivedAt: number | undefined;
  #early = 0;
  #learned = 0;

  /** How many more peers this connection may add to the pool; `took(n)` counts the ones it added. */
  get learnRoom(): number {
    return MAX_PEX_LEARNED - this.#learned;
  }

  took(n: number): void {
    this.#learned += n;
  }

  /** A message arrived: 'use' it, 'ignore' it (too soon), or 'close' (too many too soon). */
  received(now: number): 'use' | 'ignore' | 'close' {
    if (this.#receivedAt !== undefined && now - this.#receivedAt < PEX_MIN_GAP_MS) {
      return ++this.#early > MAX_EARLY_PEX ? 'close' : 'ignore';
    }
    this.#receivedAt = now;
    return 'use';
  }

  /**
   * One ut_pex payload from this peer, start to end: paced (`received`),
   * parsed strictly (parsePex), and at most `learnRoom` of the peers it names
   * handed to `add`, which puts them in the pool and returns how many were
   * new. Undefined when the message came too soon and was ignored; throws a
   * ProtocolError for a malformed message or a flood, which closes the
   * connection.
   */
  accept(now: number, payload: Buffer, add: (peers: PexPeer[]) => number): PexLearned | undefined {
    const verdict = this.received(now);
    if (verdict === 'close') throw new ProtocolError('ut_pex messages too often');
    if (verdict === 'ignore') return undefined;
    const { added } = parsePex(payload);
    const fresh = this.learnRoom > 0 ? add(added.slice(0, this.learnRoom)) : 0;
    this.took(fresh);
    return { named: added.length, fresh };
  }
}

/** Both sides of a download connection's peer exchange: PexInbox, and when to send what. */
export class PexPacer extends PexInbox {
  /** Keys of the peers the other side has been told about and not told dropped. */
  readonly #told = new Map<string, PeerAddress>();
  #sentAt: number | undefined;

  /**
   * The message to send now, or undefined (too soon, or nothing new).
   * `current`: the peers we are connected to, by key, without the recipient.
   */
  next(now: number, current: ReadonlyMap<string, PexPeer>): { added: PexPeer[]; dropped: PeerAddress[] } | undefined {
    if (this.#sentAt !== undefined && now - this.#sentAt < PEX_INTERVAL_MS) return undefined;
    const added: PexPeer[] = [];
    const dropped: PeerAddress[] = [];
    for (const [key, peer] of current) {
      if (added.length >= MAX_PEX_SEND) break;
      if (!this.#told.has(key)) added.push(peer);
    }
    for (const [key, peer] of this.#told) {
      if (dropped.length >= MAX_PEX_SEND) break;
      if (!current.has(key)) dropped.push(peer);
    }
    if (added.length === 0 && dropped.length === 0) return undefined;
    this.#sentAt = now;
    for (const p of added) this.#told.set(keyOf(p), { host: p.host, port: p.port });
    for (const p of dropped) this.#told.delete(keyOf(p));
    return { added, dropped };
  }
}

/** The key `current` maps use: host and port. */
export function keyOf(p: PeerAddress): string {
  return `${p.host}|${p.port}`;
}

/** What peer exchange reads of one download connection (the session's PeerState is one). */
export interface PexConnection {
  readonly conn: Pick<PeerConnection, 'handshakeDone' | 'encrypted' | 'direction' | 'peerBitfield' | 'send'>;
  /** BEP 11: the extended id the peer wants ut_pex messages under (0: none). */
  readonly utPexId: number;
  readonly pex: PexPacer;
  /** Where the peer accepts connections, when we know it. */
  readonly listenAddress: PeerAddress | undefined;
}

/**
 * BEP 11, sending: each peer that takes ut_pex hears, at most once a minute,
 * who we connected to and lost since. `peers` is walked more than once: a
 * collection (a Map, an array), not an iterator.
 */
export function sendPex(now: number, peers: { values(): Iterable<PexConnection> }): void {
  let current: Map<string, PexPeer> | undefined;
  for (const state of peers.values()) {
    if (state.utPexId === 0 || !state.conn.handshakeDone) continue;
    current ??= pexPeers(peers.values());
    const others = state.listenAddress ? withoutKey(current, keyOf(state.listenAddress)) : current;
    const msg = state.pex.next(now, others);
    if (msg) state.conn.send({ type: 'extended', id: state.utPexId, payload: encodePex(msg) });
  }
}

/** The peers we are connected to whose listening address we know, with their BEP 11 flags. */
export function pexPeers(peers: Iterable<PexConnection>): Map<string, PexPeer> {
  const out = new Map<string, PexPeer>();
  for (const p of peers) {
    if (!p.listenAddress || !p.conn.handshakeDone) continue;
    const flags =
      (p.conn.encrypted ? PEX_ENCRYPTION : 0) | (p.conn.peerBitfield.complete ? PEX_SEED : 0) | (p.conn.direction === 'outgoing' ? PEX_REACHABLE : 0);
    out.set(keyOf(p.listenAddress), { ...p.listenAddress, flags });
  }
  return out;
}

/** `map` without `key` (a copy only when it is there). */
function withoutKey<V>(map: Map<string, V>, key: string): Map<string, V> {
  if (!map.has(key)) return map;
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}
