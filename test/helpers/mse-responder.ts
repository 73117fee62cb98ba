/**
 * A scripted MSE responder listening on 127.0.0.1, for tests of the side of
 * tt that dials out with an encrypted handshake (MseInitiator via
 * peer/mse-dial.ts). Honest by default; each script field makes it misbehave
 * at one step: a degenerate Yb, nothing or endless padding after Yb, a method
 * tt did not offer, a PadD over the limit, bytes dripped one at a time,
 * garbage where the BitTorrent handshake belongs. Like peers that require
 * encryption, it drops a plain BitTorrent handshake unanswered. Every loop
 * and timer here is bounded, and close() ends every connection.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, Rc4, mseKeyPair, req2Hash, sha1 } from '../../src/wire/mse.js';

/** The 768-bit MSE prime, for degenerate public keys (P - 1, P). */
export const MSE_PRIME = Buffer.from(
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD' +
    'EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563',
  'hex',
);

/** A 96-byte big-endian public key of small value `n` (0, 1, 2...). */
export function smallKey(n: number): Buffer {
  const b = Buffer.alloc(96);
  b.writeUInt32BE(n, 92);
  return b;
}

/** P - 1 as 96 bytes. */
export function primeMinusOne(): Buffer {
  const b = Buffer.from(MSE_PRIME);
  b[95] = b[95]! - 1;
  return b;
}

/** What the responder has after reading step 3: the streams of the selected method. */
export interface ResponderStreams {
  /** crypto_provide tt sent. */
  provide: number;
  /** crypto_select we answered. */
  select: number;
  /** Plaintext -> wire, through RC4 when RC4 was selected. */
  wrap(plain: Buffer): Buffer;
}

export interface ResponderScript {
  /** How a plain BitTorrent handshake is dropped: a FIN (default) or a TCP reset (RST). */
  plainDrop?: 'close' | 'reset';
  /** Send nothing at all, ever. */
  silent?: boolean;
  /** The 96 bytes sent as Yb instead of an honest public key. */
  yb?: Buffer;
  /** PadB length (default 0..64 random). */
  padB?: number;
  /** After Yb and PadB: stop here ('silent'), close, or send random bytes forever (bounded). */
  afterYb?: 'silent' | 'close' | 'endless-padding';
  /** crypto_select to answer (default: RC4 if offered, else plaintext). */
  select?: (provide: number) => number;
  /** len(PadD) announced in step 4. */
  padD?: number;
  /** PadD bytes actually sent (default: as announced, capped at 4096). */
  padDSent?: number;
  /** Sent right after step 4 in the same write (BitTorrent handshake, garbage...), through the selected method. */
  after?: (s: ResponderStreams) => Buffer;
  /** Send every byte as its own write, this many ms apart. */
  dripMs?: number;
}

export interface ConnectionRecord {
  /** The peer sent "\x13BitTorrent protocol" (a plain handshake): we dropped it. */
  plain: boolean;
  /** Step 3 (HASH('req1')...) arrived and was read. */
  step3: boolean;
  /** crypto_provide tt offered. */
  provide: number | undefined;
  /** Bytes received after step 3 (decrypted when RC4 was selected). */
  after: Buffer;
  /** When the socket closed (Date.now()), and whether we closed it. */
  closedAt: number | undefined;
  closedByUs: boolean;
  openedAt: number;
}

export interface MseResponderServer {
  readonly port: number;
  readonly connections: ConnectionRecord[];
  /** Resolves once `n` connections have closed (either side), rejects after timeoutMs. */
  closedCount(n: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

const PLAIN_PREFIX = Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol')]);
const MAX_PADDING_WRITES = 400;

export async function mseResponder(infoHash: Buffer, script: ResponderScript = {}): Promise<MseResponderServer> {
  const connections: ConnectionRecord[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const rec: ConnectionRecord = { plain: false, step3: false, provide: undefined, after: Buffer.alloc(0), closedAt: undefined, closedByUs: false, openedAt: Date.now() };
    connections.push(rec);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      rec.closedAt = Date.now();
      notify();
    });
    const queue: Buffer[] = [];
    let dripping = false;
    const drip = (): void => {
      const next = queue[0];
      if (!next || socket.destroyed) {
        dripping = false;
        return;
      }
      socket.write(next.subarray(0, 1));
      if (next.length > 1) queue[0] = next.subarray(1);
      else queue.shift();
      const t = setTimeout(() => {
        timers.delete(t);
        drip();
      }, script.dripMs);
      timers.add(t);
    };
    const send = (bytes: Buffer): void => {
      if (socket.destroyed || bytes.length === 0) return;
      if (!script.dripMs) {
        socket.write(bytes);
        return;
      }
      queue.push(bytes);
      if (!dripping) {
        dripping = true;
        drip();
      }
    };
    const closeByUs = (): void => {
      rec.closedByUs = true;
      socket.destroy();
    };

    let buf: Buffer = Buffer.alloc(0);
    let secret: Buffer | undefined;
    let done = false;
    let decryptAfter: Rc4 | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (done) {
        rec.after = Buffer.concat([rec.after, decryptAfter ? decryptAfter.process(chunk) : chunk]);
        notify();
        return;
      }
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 20 && buf.subarray(0, 20).equals(PLAIN_PREFIX)) {
        rec.plain = true;
        if (script.plainDrop === 'reset') {
          rec.closedByUs = true;
          socket.resetAndDestroy();
        } else closeByUs();
        return;
      }
      if (script.silent) return;
      if (!secret) {
        if (buf.length < 96) return;
        const keys = mseKeyPair();
        secret = keys.secret(buf.subarray(0, 96));
        buf = buf.subarray(96);
        send(Buffer.concat([script.yb ?? keys.publicKey, randomBytes(script.padB ?? Math.floor(Math.random() * 64))]));
        if (script.afterYb === 'close') {
          socket.end(() => closeByUs());
          return;
        }
        if (script.afterYb === 'endless-padding') {
          let writes = 0;
          const more = (): void => {
            if (socket.destroyed || writes++ >= MAX_PADDING_WRITES) return;
            send(randomBytes(1024));
            const t = setTimeout(() => {
              timers.delete(t);
              more();
            }, 10);
            timers.add(t);
          };
          more();
          return;
        }
      }
      if (script.afterYb === 'silent' || script.afterYb === 'endless-padding') return;
      const req1 = sha1('req1', secret);
      const at = buf.indexOf(req1);
      if (at < 0 || buf.length < at + 20 + 20 + 16) return;
      const obfuscated = buf.subarray(at + 20, at + 40);
      const req3 = sha1('req3', secret);
      const req2 = Buffer.from(obfuscated.map((b, i) => b ^ req3[i]!));
      if (!req2.equals(req2Hash(infoHash))) {
        closeByUs();
        return;
      }
      const decrypt = new Rc4(sha1('keyA', secret, infoHash));
      const encrypt = new Rc4(sha1('keyB', secret, infoHash));
      const head = decrypt.process(buf.subarray(at + 40, at + 56)); // VC, provide, len(PadC) = 0, len(IA) = 0 (tt sends none)
      const provide = head.readUInt32BE(8);
      rec.provide = provide;
      rec.step3 = true;
      done = true;
      const select = script.select ? script.select(provide) : (provide & CRYPTO_RC4) !== 0 ? CRYPTO_RC4 : CRYPTO_PLAINTEXT;
      const padD = script.padD ?? 0;
      const step4 = Buffer.alloc(8 + 4 + 2);
      step4.writeUInt32BE(select >>> 0, 8);
      step4.writeUInt16BE(padD, 12);
      const padDBytes = Buffer.alloc(Math.min(script.padDSent ?? padD, 4096));
      const rc4 = select === CRYPTO_RC4;
      decryptAfter = rc4 ? decrypt : undefined;
      const rest = buf.subarray(at + 56);
      if (rest.length > 0) rec.after = rc4 ? decrypt.process(rest) : Buffer.from(rest);
      const wrapped = encrypt.process(Buffer.concat([step4, padDBytes]));
      const streams: ResponderStreams = { provide, select, wrap: (plain) => (rc4 ? encrypt.process(plain) : plain) };
      send(Buffer.concat([wrapped, script.after ? script.after(streams) : Buffer.alloc(0)]));
      notify();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    connections,
    closedCount(n, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (connections.filter((c) => c.closedAt !== undefined).length >= n) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`port ${port}: ${connections.filter((c) => c.closedAt !== undefined).length} of ${n} connections closed after ${timeoutMs} ms (${connections.length} opened)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
