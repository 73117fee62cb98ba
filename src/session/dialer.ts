/**
 * Outgoing connections of a download or seed: the TCP connect (bounded by
 * CONNECT_TIMEOUT_MS), the half-open count (at most MAX_HALF_OPEN dials at
 * once), the per-IP limit checked again once the dial reached an address,
 * the MSE handshake first for a peer that dropped our plain one (and with
 * `--encryption require`), and the redial of such a peer. Whom to dial is
 * the caller's (PeerPool.candidates via DialerHost.connectMore), and so is
 * what a connected socket becomes (DialerHost.connected).
 */
import net from 'node:net';
import { errorMessage } from '../core/errors.js';
import { ipOf } from '../core/peer-address.js';
import { sharedReadOptions, type PeerConnection, type ReadSink } from '../peer/connection.js';
import { negotiateMse } from '../peer/mse-dial.js';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, type StreamCipher } from '../wire/mse.js';
import type { PeerPool } from './peer-pool.js';

export const CONNECT_TIMEOUT_MS = 10_000;
/** Dials at once, connecting or in their MSE handshake. */
export const MAX_HALF_OPEN = 16;
/** How a connection ends when the peer drops our handshake without a word (a peer that requires encryption). */
export const DROPPED_UNANSWERED = /^(connection (closed|ended) by peer|socket error: (read |write )?(ECONNRESET|EPIPE))/;

/** What a closed connection tells about its handshake. */
export type ClosedConnection = Pick<PeerConnection, 'direction' | 'handshakeDone'>;

/** What the dialer asks of the session that owns it. */
export interface DialerHost {
  /** The torrent's info hash: an MSE handshake names it. */
  readonly infoHash: Buffer;
  /** Every connection RC4 (`--encryption require`, the listener's setting). */
  readonly requireEncryption: boolean;
  /** Connections one IP may have at once, open and being dialed together. */
  readonly maxPeersPerIp: number;
  readonly pool: Pick<PeerPool, 'markConnecting' | 'markFailed' | 'get' | 'retryEncrypted'>;
  stopped(): boolean;
  /** The IPs of the open connections, one entry per connection. */
  openIps(): Iterable<string>;
  /** A dial reached its peer (and finished its MSE handshake, if any): make the socket a peer and start it. */
  connected(socket: net.Socket, host: string, port: number, key: string, sink: ReadSink, cipher?: StreamCipher, leftover?: Buffer): void;
  dialFailed(key: string, reason: string): void;
  /** Choose peers and dial them (the session's policy): called on the next turn after dials fail. */
  connectMore(): void;
  /** Run a callback from a timer or a promise; an exception must not escape. */
  guard(fn: () => void): void;
}

/** How many more peers may be dialed now: below `maxPeers` connections in all and MAX_HALF_OPEN dials at once. */
export function dialRoom(maxPeers: number, open: number, halfOpen: number): number {
  return Math.min(maxPeers - open - halfOpen, MAX_HALF_OPEN - halfOpen);
}

/** A connection we dialed ended before its handshake in a way that says the peer wants encryption. */
export function droppedPlainHandshake(conn: ClosedConnection, reason: string): boolean {
  return conn.direction === 'outgoing' && !conn.handshakeDone && DROPPED_UNANSWERED.test(reason);
}

export class Dialer {
  readonly #host: DialerHost;
  #halfOpen = 0;
  /** Sockets dialed and not yet a PeerConnection (connecting, or in an MSE handshake), with the IP each counts against. */
  readonly #dialing = new Map<net.Socket, string>();
  #connectScheduled = false;

  constructor(host: DialerHost) {
    this.#host = host;
  }

  /** Dials not yet connected or still in their MSE handshake. */
  get halfOpen(): number {
    return this.#halfOpen;
  }

  /** How many more peers may be dialed now, with `open` connections (dialRoom). */
  room(maxPeers: number, open: number): number {
    return dialRoom(maxPeers, open, this.#halfOpen);
  }

  /** Per IP, the connections open (DialerHost.openIps) or being dialed. */
  connectionsByIp(): Map<string, number> {
    const busy = new Map<string, number>();
    const count = (ip: string): void => void busy.set(ip, (busy.get(ip) ?? 0) + 1);
    for (const ip of this.#host.openIps()) count(ip);
    for (const ip of this.#dialing.values()) count(ip);
    return busy;
  }

  dial(host: string, port: number, key: string): void {
    const h = this.#host;
    h.pool.markConnecting(key);
    this.#halfOpen++;
    // reads land in one process-wide buffer (incoming sockets too: see the listener)
    const sink: ReadSink = { conn: undefined };
    const socket = net.connect({ host, port, noDelay: true, onread: sharedReadOptions(sink) });
    this.#dialing.set(socket, ipOf(host));
    socket.once('close', () => this.#dialing.delete(socket));
    let settled = false;
    const timer = setTimeout(() => fail('connect timeout'), CONNECT_TIMEOUT_MS);
    timer.unref();
    const fail = (reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.#halfOpen--;
      this.#dialing.delete(socket); // its IP's place is free now, not at 'close' (after the next candidates are chosen)
      socket.destroy();
      h.pool.markFailed(key);
      h.dialFailed(key, reason);
      // the freed half-open slot goes to the next candidate now, not at the next tick:
      // a tracker list full of dead peers must not hold back the live one behind them
      this.connectMoreSoon();
    };
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? errorMessage(err)));
    socket.once('connect', () => {
      if (settled) return;
      // the dial counted the address as given (a hostname, say); count the IP it reached too
      const ip = ipOf(socket.remoteAddress ?? host);
      this.#dialing.delete(socket);
      if ((this.connectionsByIp().get(ip) ?? 0) >= h.maxPeersPerIp) {
        fail(`more than ${h.maxPeersPerIp} connections to ${ip}`);
        return;
      }
      this.#dialing.set(socket, ip);
      clearTimeout(timer);
      socket.removeAllListeners('error');
      if (h.stopped() || !(h.requireEncryption || h.pool.get(key)?.encrypt)) {
        settled = true;
        this.#halfOpen--;
        this.#dialing.delete(socket);
        if (h.stopped()) socket.destroy();
        else h.connected(socket, host, port, key, sink);
        return;
      }
      // MSE first: we require encryption, or this peer dropped our plain handshake before.
      // Still half-open until the encrypted handshake is done.
      const provide = h.requireEncryption ? CRYPTO_RC4 : CRYPTO_PLAINTEXT | CRYPTO_RC4;
      negotiateMse(socket, sink, h.infoHash, provide).then(
        (mse) => {
          if (settled) return;
          settled = true;
          this.#halfOpen--;
          this.#dialing.delete(socket);
          if (h.stopped()) socket.destroy();
          else h.guard(() => h.connected(socket, host, port, key, sink, mse.cipher, mse.rest));
        },
        (err: unknown) => fail(`encrypted handshake failed: ${errorMessage(err)}`),
      );
    });
  }

  /**
   * A connection to pool entry `poolKey` closed for `reason`: if we dialed it
   * plain and the peer dropped the handshake unanswered (a peer that requires
   * encryption), it is dialed again with MSE, once (PeerPool.retryEncrypted).
   * Returns whether that redial is on its way.
   */
  redialEncrypted(conn: ClosedConnection, poolKey: string, reason: string): boolean {
    if (!(droppedPlainHandshake(conn, reason) && !this.#host.stopped() && this.#host.pool.retryEncrypted(poolKey))) return false;
    this.connectMoreSoon();
    return true;
  }

  /** DialerHost.connectMore on the next turn of the event loop, once however many dials fail in this one. */
  connectMoreSoon(): void {
    if (this.#connectScheduled) return;
    this.#connectScheduled = true;
    setImmediate(() => {
      this.#connectScheduled = false;
      this.#host.guard(() => this.#host.connectMore());
    });
  }

  /** End every dial in progress (the session stops). */
  close(): void {
    for (const socket of this.#dialing.keys()) socket.destroy();
    this.#dialing.clear();
  }
}
