/**
 * The TCP listener shared by every torrent in a process (BEP 3 "peers connect
 * to each other"). Owns accepting sockets (moved onto the shared read buffer,
 * as outgoing ones are opened), answering an encrypted (MSE) greeting
 * (wire/mse.ts), reading the 68-byte handshake with
 * a timeout and a cap on half-open sockets, and handing the socket to the
 * torrent whose info hash it names. Unknown info hashes are dropped.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { TtError, errorMessage } from '../core/errors.js';
import { unmapIpv4 } from '../core/compact-peer.js';
import { peerKey } from '../core/ids.js';
import { deliverRead, sharedReadOptions, type ReadSink } from '../peer/connection.js';
import { HANDSHAKE_LENGTH, checkHandshakePrefix, parseHandshake, type Handshake } from '../wire/handshake.js';
import { MseResponder, req2Hash, type StreamCipher } from '../wire/mse.js';

export const INCOMING_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * A greeting that is not plain BitTorrent must deliver a whole MSE public key
 * (96 bytes, sent in one write by every client) this fast, or it is garbage:
 * an HTTP request must not hold a pending-handshake slot for 10 s.
 */
export const MSE_KEY_TIMEOUT_MS = 1_000;
const MAX_PENDING_HANDSHAKES = 64;
export const DEFAULT_PORTS: readonly number[] = [6881, 6882, 6883, 6884, 6885, 6886, 6887, 6888, 6889];

/** `cipher`: the RC4 stream the connection's MSE handshake selected (leftover is already decrypted). */
export type IncomingHandler = (socket: net.Socket, handshake: Handshake, leftover: Buffer, reads: ReadSink, cipher?: StreamCipher) => void;

/** `accepted`: the socket tt reads and writes for an incoming connection, before its handshake. */
export interface ListenerEvents {
  accepted: [socket: net.Socket];
  /** An incoming connection dropped before its handshake reached a torrent, and why (shown with --verbose). */
  refused: [peer: string, reason: string];
}

export class Listener extends EventEmitter<ListenerEvents> {
  readonly server: net.Server;
  readonly host: string;
  readonly port: number;
  readonly #handlers = new Map<string, IncomingHandler>();
  /** HASH('req2', info hash) -> info hash: how an MSE initiator names the torrent. */
  readonly #byReq2 = new Map<string, Buffer>();
  /** sockets still owing us a handshake, oldest first (Set keeps insertion order) */
  readonly #pending = new Set<net.Socket>();
  /** Only MSE handshakes with the RC4 stream (`--encryption require`); plain BitTorrent greetings are dropped. */
  readonly requireEncryption: boolean;

  private constructor(server: net.Server, host: string, port: number, requireEncryption: boolean) {
    super();
    this.server = server;
    this.host = host;
    this.port = port;
    this.requireEncryption = requireEncryption;
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /**
   * Listen on `port`, or (port undefined) on the first free port of 6881-6889,
   * falling back to a random free port.
   */
  static async listen(opts: { host?: string; port?: number; requireEncryption?: boolean } = {}): Promise<Listener> {
    // no address given: every address, IPv6 and IPv4 on one dual-stack socket (IPv4 peers arrive
    // as ::ffff:a.b.c.d, unmapped where they are counted), as libtorrent, Transmission and aria2c
    // listen; IPv4 alone where the machine has no IPv6
    let host = opts.host ?? '::';
    const candidates = opts.port !== undefined ? [opts.port] : [...DEFAULT_PORTS, 0];
    let lastError: unknown;
    for (const port of candidates) {
      try {
        const server = await listenOn(host, port).catch((err: unknown) => {
          if (opts.host !== undefined || !NO_IPV6.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
          host = '0.0.0.0';
          return listenOn(host, port);
        });
        const address = server.address();
        const bound = typeof address === 'object' && address ? address.port : port;
        return new Listener(server, host, bound, opts.requireEncryption === true);
      } catch (err) {
        lastError = err;
      }
    }
    throw new TtError('USAGE', `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${opts.port ?? '6881-6889'}: ${errorMessage(lastError)}`);
  }

  register(infoHash: Buffer, handler: IncomingHandler): void {
    this.#handlers.set(infoHash.toString('hex'), handler);
    this.#byReq2.set(req2Hash(infoHash).toString('hex'), infoHash);
  }

  unregister(infoHash: Buffer): void {
    this.#handlers.delete(infoHash.toString('hex'));
    this.#byReq2.delete(req2Hash(infoHash).toString('hex'));
  }

  close(): Promise<void> {
    // server.close() waits for every socket: end the silent ones now
    for (const socket of this.#pending) socket.destroy();
    this.#pending.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #onConnection(accepted: net.Socket): void {
    const peer = peerKey(unmapIpv4(accepted.remoteAddress ?? '?'), accepted.remotePort ?? 0); // before its handle moves to `socket`
    const sink: ReadSink = { conn: undefined };
    const socket = adoptWithSharedReads(accepted, sink);
    if (this.#pending.size >= MAX_PENDING_HANDSHAKES) {
      // full of sockets that say nothing: the oldest goes (an honest peer
      // handshakes within milliseconds, so the newcomer is the better bet)
      const oldest = this.#pending.values().next().value;
      if (oldest) {
        this.#pending.delete(oldest);
        oldest.destroy();
      }
    }
    this.#pending.add(socket);
    this.emit('accepted', socket);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.#pending.delete(socket);
      clearTimeout(timer);
      clearTimeout(keyTimer);
      sink.onEarly = undefined;
    };
    const timer = setTimeout(() => {
      finish();
      socket.destroy();
    }, INCOMING_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    /** Plain BitTorrent bytes not yet consumed (after MSE: the decrypted initial payload onwards). */
    let pending: Buffer = Buffer.alloc(0);
    let mse: MseResponder | undefined;
    let mseInfoHash: Buffer | undefined;
    let cipher: StreamCipher | undefined;
    let keyTimer: NodeJS.Timeout | undefined;
    /** Drop the connection; with a reason, say so ('refused': shown with --verbose). */
    const refuse = (reason?: string): void => {
      finish();
      socket.destroy();
      if (reason !== undefined) this.emit('refused', peer, reason);
    };
    sink.onEarly = (): void => {
      const chunks = sink.early ?? [];
      sink.early = undefined;
      const chunk = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (mse) {
        let replies: Buffer[];
        try {
          replies = mse.push(chunk);
        } catch (err) {
          refuse(`encrypted handshake failed: ${errorMessage(err)}`);
          return;
        }
        for (const reply of replies) socket.write(reply);
        if (!mse.result) return;
        mseInfoHash = mse.result.infoHash;
        pending = mse.result.rest;
        cipher = mse.result.cipher;
        mse = undefined;
      } else {
        const plain = cipher ? cipher.decrypt.process(chunk) : chunk;
        pending = pending.length === 0 ? plain : Buffer.concat([pending, plain]);
      }
      if (this.requireEncryption && !mseInfoHash && pending.length >= 20 && plainPrefix(pending)) {
        refuse('plain BitTorrent handshake, but --encryption require takes encrypted (MSE) connections only');
        return;
      }
      if (!plainPrefix(pending)) {
        if (mseInfoHash) {
          refuse(); // one encrypted handshake, then plain BitTorrent: nothing else
          return;
        }
        // not "\x13BitTorrent protocol": the start of an encrypted (MSE) handshake, or garbage
        // (which fails there: no HASH('req1') within the allowed padding, or the timeout)
        const responder = new MseResponder((req2) => this.#byReq2.get(req2.toString('hex')), { requireRc4: this.requireEncryption });
        mse = responder;
        keyTimer = setTimeout(() => {
          if (!responder.keyReceived) refuse('not BitTorrent, nor an encrypted handshake within 1 s');
        }, MSE_KEY_TIMEOUT_MS);
        keyTimer.unref();
        const all = pending;
        pending = Buffer.alloc(0) as Buffer;
        sink.early = [all];
        sink.onEarly?.();
        return;
      }
      if (pending.length < HANDSHAKE_LENGTH) return;
      const all = pending;
      finish();
      socket.pause();
      let handshake: Handshake;
      try {
        handshake = parseHandshake(all.subarray(0, HANDSHAKE_LENGTH));
      } catch {
        socket.destroy();
        return;
      }
      if (mseInfoHash && !mseInfoHash.equals(handshake.infoHash)) {
        socket.destroy();
        return;
      }
      const handler = this.#handlers.get(handshake.infoHash.toString('hex'));
      if (!handler) {
        socket.destroy();
        this.emit('refused', peer, `asked for a torrent we do not serve (${handshake.infoHash.toString('hex')})`);
        return;
      }
      try {
        handler(socket, handshake, all.subarray(HANDSHAKE_LENGTH), sink, cipher);
        socket.resume();
      } catch {
        socket.destroy();
      }
    };
    socket.on('error', () => {
      finish();
      socket.destroy();
    });
    socket.on('close', finish);
  }
}

/** True while `bytes` can still be the start of a plain BitTorrent handshake. */
function plainPrefix(bytes: Buffer): boolean {
  try {
    checkHandshakePrefix(bytes.subarray(0, HANDSHAKE_LENGTH));
    return true;
  } catch {
    return false;
  }
}

/**
 * Incoming sockets read into the shared buffer too (`sharedReadOptions`: no
 * allocation per read, reads up to 1 MiB). net.Server takes no `onread`, so
 * the accepted socket (paused, nothing read yet) hands its TCP handle to a
 * new Socket opened with one, as Node itself re-wraps handles sent between
 * processes; the server's connection count is released with the old wrapper.
 * Where that is not possible the socket stays as it is and its 'data' events
 * feed the same sink.
 */
export function adoptWithSharedReads(accepted: net.Socket, sink: ReadSink): net.Socket {
  const wrapper = accepted as unknown as { _handle: { useUserBuffer?: unknown } | null };
  const handle = wrapper._handle;
  if (handle && typeof handle.useUserBuffer === 'function') {
    let adopted: net.Socket | undefined;
    try {
      adopted = new net.Socket({ handle, onread: sharedReadOptions(sink) } as net.SocketConstructorOpts);
    } catch {
      adopted = undefined;
    }
    if (adopted) {
      wrapper._handle = null; // the old wrapper must not close the handle it gave away
      accepted.destroy();
      adopted.setNoDelay(true);
      return adopted;
    }
  }
  accepted.on('data', (chunk: Buffer) => deliverRead(sink, chunk, false));
  accepted.resume();
  return accepted;
}

/** What listening on '::' fails with where the machine has no IPv6. */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT', 'EINVAL']);

function listenOn(host: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true, pauseOnConnect: true });
    const onError = (err: Error): void => {
      server.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.removeListener('error', onError);
      server.on('error', () => undefined);
      resolve(server);
    });
  });
}
