/**
 * A scripted BitTorrent peer for integration tests of hostile behaviour: it sends
 * whatever frames a test tells it to (well-formed or not) and records what the
 * other side sends, decoded leniently. Loopback only. BEP 3 framing via src/wire/.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FrameError, MessageDecoder } from '../../src/wire/decoder.js';
import { HANDSHAKE_LENGTH, encodeHandshake, parseHandshake, type Handshake } from '../../src/wire/handshake.js';
import { encodeMessage, type Message } from '../../src/wire/messages.js';

/** Default wait for connect, handshake and messages, in milliseconds. */
export const RAW_PEER_TIMEOUT_MS = 5_000;
const LOOPBACK = '127.0.0.1';

export interface RawPeerOptions {
  /** Default timeout for connect / readHandshake / nextMessage / waitFor (ms). */
  timeoutMs?: number;
}

export interface RawPeerServer {
  readonly port: number;
  /** The next peer that connected (in order), waiting up to timeoutMs for one. */
  accept(timeoutMs?: number): Promise<RawPeer>;
  /** Stops listening and destroys every accepted connection. */
  close(): Promise<void>;
}

/** A peer id for the raw peer: recognisable in logs, random tail. */
function rawPeerId(): Buffer {
  return Buffer.concat([Buffer.from('-RP0001-', 'latin1'), randomBytes(12)]);
}

type Attempt = () => boolean;

export class RawPeer {
  /** Every message received after the handshake, in order. */
  readonly received: Message[] = [];
  /** Resolves when the socket has closed (either side). Never rejects. */
  readonly closed: Promise<void>;
  readonly timeoutMs: number;
  readonly #socket: Socket;
  /** Lenient: records what the other side sends without judging it by a torrent's size. */
  readonly #decoder = new MessageDecoder({ pieceCount: 0, lenient: true });
  #preHandshake: Buffer = Buffer.alloc(0);
  #handshake: Handshake | undefined;
  /** A handshake or framing error in what the other side sent; later bytes are ignored. */
  #failure: Error | undefined;
  #isClosed = false;
  /** Next message nextMessage / waitFor will look at. */
  #cursor = 0;
  readonly #waiters = new Set<Attempt>();

  private constructor(socket: Socket, opts: RawPeerOptions | undefined) {
    this.#socket = socket;
    this.timeoutMs = opts?.timeoutMs ?? RAW_PEER_TIMEOUT_MS;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {}); // resets are expected from a peer we abuse; 'close' follows
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true;
        this.#notify();
        resolve();
      });
    });
  }

  /** Connects to host:port (loopback in tests). */
  static connect(host: string, port: number, opts?: RawPeerOptions): Promise<RawPeer> {
    const timeoutMs = opts?.timeoutMs ?? RAW_PEER_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RawPeer(socket, opts));
      });
    });
  }

  /** Listens on 127.0.0.1 port 0; each incoming connection becomes a RawPeer. */
  static listen(opts?: RawPeerOptions): Promise<RawPeerServer> {
    const timeoutMs = opts?.timeoutMs ?? RAW_PEER_TIMEOUT_MS;
    const pending: RawPeer[] = [];
    const all: RawPeer[] = [];
    const waiting: ((peer: RawPeer) => void)[] = [];
    const server: Server = createServer((socket) => {
      const peer = new RawPeer(socket, opts);
      all.push(peer);
      const waiter = waiting.shift();
      if (waiter) waiter(peer);
      else pending.push(peer);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => {
        const address = server.address();
        if (address === null || typeof address === 'string') {
          reject(new Error('no listen address'));
          return;
        }
        resolve({
          port: address.port,
          accept(acceptTimeoutMs = timeoutMs): Promise<RawPeer> {
            const ready = pending.shift();
            if (ready) return Promise.resolve(ready);
            return new Promise((res, rej) => {
              const timer = setTimeout(() => {
                const i = waiting.indexOf(take);
                if (i >= 0) waiting.splice(i, 1);
                rej(new Error(`no connection within ${acceptTimeoutMs} ms`));
              }, acceptTimeoutMs);
              const take = (peer: RawPeer): void => {
                clearTimeout(timer);
                res(peer);
              };
              waiting.push(take);
            });
          },
          close(): Promise<void> {
            for (const peer of all) peer.close();
            return new Promise((res) => server.close(() => res()));
          },
        });
      });
    });
  }

  /** Sends a BEP 3 handshake. Reserved defaults to all zeros: a plain BEP 3 peer (no fast / extension protocol). */
  sendHandshake(infoHash: Buffer, peerId: Buffer = rawPeerId(), reserved: Buffer = Buffer.alloc(8)): void {
    this.sendRaw(encodeHandshake(infoHash, peerId, reserved));
  }

  /** The other side's handshake (always the first 68 bytes it sends). */
  readHandshake(timeoutMs = this.timeoutMs): Promise<Handshake> {
    return this.#waitUntil(() => this.#handshake, timeoutMs, 'the handshake');
  }

  send(m: Message): void {
    this.sendRaw(encodeMessage(m));
  }

  /** Writes bytes as they are: hostile frames, partial frames, garbage. Ignored once closed. */
  sendRaw(bytes: Buffer): void {
    if (!this.#socket.destroyed) this.#socket.write(bytes);
  }

  /** The next message not yet returned by nextMessage / waitFor. Rejects on timeout, close or a framing error. */
  nextMessage(timeoutMs = this.timeoutMs): Promise<Message> {
    return this.#waitUntil(
      () => (this.#cursor < this.received.length ? this.received[this.#cursor++] : undefined),
      timeoutMs,
      'a message',
    );
  }

  /** Consumes messages until one matches `pred` and returns it. */
  waitFor(pred: (m: Message) => boolean, timeoutMs = this.timeoutMs): Promise<Message> {
    return this.#waitUntil(
      () => {
        while (this.#cursor < this.received.length) {
          const m = this.received[this.#cursor++]!;
          if (pred(m)) return m;
        }
        return undefined;
      },
      timeoutMs,
      'a matching message',
    );
  }

  /** Resolves when the connection closes; rejects if it is still open after timeoutMs. */
  waitClosed(timeoutMs = this.timeoutMs): Promise<void> {
    return this.#waitUntil(() => (this.#isClosed ? true : undefined), timeoutMs, 'the connection to close').then(() => undefined);
  }

  /** Stop reading from the socket: the other side's sends back up in its buffers. */
  pauseReading(): void {
    this.#socket.pause();
  }

  resumeReading(): void {
    this.#socket.resume();
  }

  isClosed(): boolean {
    return this.#isClosed;
  }

  /** Destroys the socket at once (an abrupt disconnect, as a crashing peer would). */
  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#failure) return;
    try {
      if (this.#handshake === undefined) {
        this.#preHandshake = Buffer.concat([this.#preHandshake, chunk]);
        if (this.#preHandshake.length < HANDSHAKE_LENGTH) return;
        this.#handshake = parseHandshake(this.#preHandshake);
        chunk = this.#preHandshake.subarray(HANDSHAKE_LENGTH);
        this.#preHandshake = Buffer.alloc(0);
      }
      for (const m of this.#decoder.push(chunk)) this.received.push(m);
    } catch (err) {
      if (err instanceof FrameError) this.received.push(...err.decoded);
      this.#failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.#notify();
    }
  }

  #notify(): void {
    for (const attempt of [...this.#waiters]) attempt();
  }

  /**
   * Resolves with check()'s first defined result, re-checking on every event;
   * rejects on a recorded failure, on close, or after timeoutMs.
   */
  #waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(attempt);
      };
      const attempt: Attempt = () => {
        const value = check();
        if (value !== undefined) {
          finish();
          resolve(value);
        } else if (this.#failure) {
          finish();
          reject(this.#failure);
        } else if (this.#isClosed) {
          finish();
          reject(new Error(`connection closed while waiting for ${what}`));
        } else {
          return false;
        }
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      if (!attempt()) this.#waiters.add(attempt);
    });
  }
}
