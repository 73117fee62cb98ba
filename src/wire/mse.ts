/**
 * Message Stream Encryption (MSE/PE, the Vuze/Azureus protocol every major
 * client speaks), receiving side, sans-I/O. aria2c, Transmission ("prefer
 * encryption") and libtorrent open connections with it by default and retry in
 * plain BitTorrent only after a failure: against a tt that spoke only plain
 * BitTorrent, aria2c lost a second per connection. Owns the Diffie-Hellman
 * exchange, the obfuscated torrent lookup, RC4 (OpenSSL 3 no longer offers it)
 * and the bounds on padding. tt selects the plaintext payload method: the
 * handshake is obfuscated, the stream after it is plain (as every client
 * allows by default); a peer that insists on RC4 for the stream is refused.
 */
import { createDiffieHellman, createHash, randomBytes, randomInt } from 'node:crypto';
import { ProtocolError } from '../core/errors.js';

/** The 768-bit prime P of MSE (generator 2). */
const PRIME = Buffer.from(
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD' +
    'EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563',
  'hex',
);
export const MSE_KEY_LENGTH = 96;
export const MSE_MAX_PAD = 512;
/** Initial payload we accept with the handshake (a BitTorrent handshake and a few messages fit). */
export const MSE_MAX_IA = 16 * 1024;
export const CRYPTO_PLAINTEXT = 0x01;
export const CRYPTO_RC4 = 0x02;
const VC = Buffer.alloc(8);

/** RC4 with the first 1024 bytes of keystream dropped, as MSE specifies. */
export class Rc4 {
  readonly #s = new Uint8Array(256);
  #i = 0;
  #j = 0;

  constructor(key: Uint8Array, discard = 1024) {
    const s = this.#s;
    for (let i = 0; i < 256; i++) s[i] = i;
    for (let i = 0, j = 0; i < 256; i++) {
      j = (j + s[i]! + key[i % key.length]!) & 0xff;
      const t = s[i]!;
      s[i] = s[j]!;
      s[j] = t;
    }
    if (discard > 0) this.process(Buffer.alloc(discard));
  }

  /** XOR `data` with the keystream (encrypts and decrypts alike); returns a new buffer. */
  process(data: Uint8Array): Buffer {
    const s = this.#s;
    const out = Buffer.allocUnsafe(data.length);
    let i = this.#i;
    let j = this.#j;
    for (let n = 0; n < data.length; n++) {
      i = (i + 1) & 0xff;
      j = (j + s[i]!) & 0xff;
      const t = s[i]!;
      s[i] = s[j]!;
      s[j] = t;
      out[n] = data[n]! ^ s[(s[i]! + s[j]!) & 0xff]!;
    }
    this.#i = i;
    this.#j = j;
    return out;
  }
}

export function sha1(...parts: (string | Uint8Array)[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HASH('req2', SKEY): how an initiator names a torrent without sending its info hash. */
export function req2Hash(infoHash: Buffer): Buffer {
  return sha1('req2', infoHash);
}

/** MSE allows 128-180 bit private keys; 160 bits keeps each exponentiation ~5x cheaper than 768. */
const PRIVATE_KEY_BYTES = 20;
/**
 * One DiffieHellman object for every handshake: creating one checks the prime
 * (19 ms here, on the event loop, per incoming connection: a cheap way to
 * stall tt), while setting a fresh private key on it costs ~0.1 ms per
 * handshake. Each use sets its own key first, synchronously.
 */
let group: ReturnType<typeof createDiffieHellman> | undefined;

/** A DH key pair on MSE's group; public key and secrets left-padded to 96 bytes. */
export function mseKeyPair(): { publicKey: Buffer; secret(otherPublic: Buffer): Buffer } {
  const dh = (group ??= createDiffieHellman(PRIME, 2));
  const privateKey = randomBytes(PRIVATE_KEY_BYTES);
  dh.setPrivateKey(privateKey);
  dh.generateKeys();
  const publicKey = leftPad(dh.getPublicKey());
  return {
    publicKey,
    secret: (otherPublic) => {
      dh.setPrivateKey(privateKey);
      return leftPad(dh.computeSecret(otherPublic));
    },
  };
}

function leftPad(b: Buffer): Buffer {
  if (b.length >= MSE_KEY_LENGTH) return b;
  return Buffer.concat([Buffer.alloc(MSE_KEY_LENGTH - b.length), b]);
}

export interface MseResult {
  infoHash: Buffer;
  /** Plaintext that follows the encrypted handshake: the initial payload, then whatever came after it. */
  rest: Buffer;
}

type Stage = 'ya' | 'req1' | 'provide' | 'padc' | 'ia' | 'done';

/**
 * The receiving side of the MSE handshake. push() bytes as they arrive; it
 * returns what to send back, and `result` once the initiator's part is read.
 * Any violation throws a ProtocolError (the caller closes the connection).
 */
export class MseResponder {
  readonly #lookup: (req2: Buffer) => Buffer | undefined;
  #stage: Stage = 'ya';
  #buf: Buffer = Buffer.alloc(0);
  #secret: Buffer | undefined;
  #req1: Buffer | undefined;
  /** Bytes scanned for req1 after Ya (PadA is at most 512). */
  #scanned = 0;
  #infoHash: Buffer | undefined;
  #decrypt: Rc4 | undefined;
  #encrypt: Rc4 | undefined;
  #provide = 0;
  #padC = 0;
  #iaLength = 0;
  result: MseResult | undefined;

  /** The initiator's 96-byte public key has arrived. */
  get keyReceived(): boolean {
    return this.#stage !== 'ya';
  }

  /** `lookup` maps HASH('req2', info hash) to the info hash of a torrent we serve. */
  constructor(lookup: (req2: Buffer) => Buffer | undefined) {
    this.#lookup = lookup;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#stage === 'done') throw new ProtocolError('MSE: data after the handshake');
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Buffer[] = [];
    for (let guard = 0; guard < 8; guard++) {
      const before: Stage = this.#stage;
      if (!this.#step(out) || this.#stage === before) break;
    }
    return out;
  }

  #take(n: number): Buffer {
    const head = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return head;
  }

  /** One stage forward if its bytes are here; false once done. */
  #step(out: Buffer[]): boolean {
    this.#advance(out);
    return this.#stage !== 'done';
  }

  #advance(out: Buffer[]): void {
    switch (this.#stage) {
      case 'ya': {
        if (this.#buf.length < MSE_KEY_LENGTH) return;
        const ya = this.#take(MSE_KEY_LENGTH);
        const keys = mseKeyPair();
        this.#secret = keys.secret(ya);
        this.#req1 = sha1('req1', this.#secret);
        out.push(Buffer.concat([keys.publicKey, randomBytes(randomInt(0, MSE_MAX_PAD + 1))]));
        this.#stage = 'req1';
        return;
      }
      case 'req1': {
        const at = this.#buf.indexOf(this.#req1!);
        if (at < 0) {
          // keep the last 19 bytes: req1 may straddle two reads
          const drop = Math.max(0, this.#buf.length - 19);
          this.#scanned += drop;
          this.#take(drop);
          if (this.#scanned > MSE_MAX_PAD) throw new ProtocolError('MSE: no HASH(req1) within 512 bytes of padding');
          return;
        }
        if (this.#scanned + at > MSE_MAX_PAD) throw new ProtocolError('MSE: padding longer than 512 bytes');
        this.#take(at + 20);
        this.#stage = 'provide';
        return;
      }
      case 'provide': {
        if (this.#buf.length < 20 + 8 + 4 + 2) return;
        const obfuscated = this.#take(20);
        const req3 = sha1('req3', this.#secret!);
        const req2 = Buffer.alloc(20);
        for (let i = 0; i < 20; i++) req2[i] = obfuscated[i]! ^ req3[i]!;
        const infoHash = this.#lookup(req2);
        if (!infoHash) throw new ProtocolError('MSE: not a torrent we serve');
        this.#infoHash = infoHash;
        this.#decrypt = new Rc4(sha1('keyA', this.#secret!, infoHash));
        this.#encrypt = new Rc4(sha1('keyB', this.#secret!, infoHash));
        const head = this.#decrypt.process(this.#take(14));
        if (!head.subarray(0, 8).equals(VC)) throw new ProtocolError('MSE: bad verification constant');
        this.#provide = head.readUInt32BE(8);
        this.#padC = head.readUInt16BE(12);
        if (this.#padC > MSE_MAX_PAD) throw new ProtocolError(`MSE: PadC of ${this.#padC} bytes`);
        this.#stage = 'padc';
        return;
      }
      case 'padc': {
        if (this.#buf.length < this.#padC + 2) return;
        const plain = this.#decrypt!.process(this.#take(this.#padC + 2));
        this.#iaLength = plain.readUInt16BE(this.#padC);
        if (this.#iaLength > MSE_MAX_IA) throw new ProtocolError(`MSE: initial payload of ${this.#iaLength} bytes`);
        this.#stage = 'ia';
        return;
      }
      case 'ia': {
        if (this.#buf.length < this.#iaLength) return;
        const ia = this.#decrypt!.process(this.#take(this.#iaLength));
        if ((this.#provide & CRYPTO_PLAINTEXT) === 0) {
          throw new ProtocolError('MSE: the peer requires an RC4-encrypted stream (tt offers the plaintext method only)');
        }
        const select = Buffer.alloc(8 + 4 + 2);
        select.writeUInt32BE(CRYPTO_PLAINTEXT, 8); // VC, crypto_select, len(padD) = 0
        out.push(this.#encrypt!.process(select));
        this.result = { infoHash: this.#infoHash!, rest: Buffer.concat([ia, this.#buf]) };
        this.#buf = Buffer.alloc(0);
        this.#stage = 'done';
        return;
      }
      default:
        return;
    }
  }
}
