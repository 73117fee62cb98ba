/**
 * Message Stream Encryption (MSE/PE, the Vuze/Azureus protocol every major
 * client speaks), both sides, sans-I/O. aria2c, Transmission ("prefer
 * encryption") and libtorrent open connections with it by default, and peers
 * set to "require encryption" accept nothing else. Owns the Diffie-Hellman
 * exchange, the obfuscated torrent lookup, RC4 (OpenSSL 3 no longer offers it),
 * the choice of stream method and the bounds on padding. The responder picks
 * the plaintext stream method when the initiator offers it (every client does
 * by default) and RC4 when that is all it offers or when tt requires
 * encryption; the initiator offers what the caller asks for.
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

/** The RC4 stream of a connection that selected it: every byte after the handshake goes through these. */
export interface StreamCipher {
  readonly decrypt: Rc4;
  readonly encrypt: Rc4;
}

export interface MseResult {
  infoHash: Buffer;
  /** Plaintext that follows the encrypted handshake: the initial payload, then whatever came after it (decrypted). */
  rest: Buffer;
  /** Present when the RC4 stream method was selected. */
  cipher?: StreamCipher;
}

export interface MseResponderOptions {
  /** Select RC4 whatever else is offered, and refuse a peer that does not offer it. */
  requireRc4?: boolean;
}

/**
 * Bytes received and not yet consumed by a handshake side, and the search for
 * a marker behind at most MSE_MAX_PAD bytes of random padding (the responder
 * looks for HASH('req1'), the initiator for the encrypted VC).
 */
class Intake {
  #buf: Buffer = Buffer.alloc(0);
  #scanned = 0;

  get length(): number {
    return this.#buf.length;
  }

  append(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
  }

  take(n: number): Buffer {
    const head = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return head;
  }

  /** Everything still held. */
  drain(): Buffer {
    return this.take(this.#buf.length);
  }

  /** Drop padding up to `marker`: true once the marker is next; a ProtocolError past 512 bytes of padding. */
  skipTo(marker: Buffer, what: string): boolean {
    const at = this.#buf.indexOf(marker);
    if (at < 0) {
      // keep a marker's length less one: it may straddle two reads
      const drop = Math.max(0, this.#buf.length - (marker.length - 1));
      this.#scanned += drop;
      this.take(drop);
      if (this.#scanned > MSE_MAX_PAD) throw new ProtocolError(`MSE: no ${what} within 512 bytes of padding`);
      return false;
    }
    if (this.#scanned + at > MSE_MAX_PAD) throw new ProtocolError('MSE: padding longer than 512 bytes');
    this.take(at);
    return true;
  }
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
  readonly #in = new Intake();
  #secret: Buffer | undefined;
  #req1: Buffer | undefined;
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

  readonly #requireRc4: boolean;

  /** `lookup` maps HASH('req2', info hash) to the info hash of a torrent we serve. */
  constructor(lookup: (req2: Buffer) => Buffer | undefined, opts: MseResponderOptions = {}) {
    this.#lookup = lookup;
    this.#requireRc4 = opts.requireRc4 === true;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#stage === 'done') throw new ProtocolError('MSE: data after the handshake');
    this.#in.append(chunk);
    const out: Buffer[] = [];
    for (let guard = 0; guard < 8; guard++) {
      const before: Stage = this.#stage;
      if (!this.#step(out) || this.#stage === before) break;
    }
    return out;
  }

  /** One stage forward if its bytes are here; false once done. */
  #step(out: Buffer[]): boolean {
    this.#advance(out);
    return this.#stage !== 'done';
  }

  #advance(out: Buffer[]): void {
    switch (this.#stage) {
      case 'ya': {
        if (this.#in.length < MSE_KEY_LENGTH) return;
        const ya = this.#in.take(MSE_KEY_LENGTH);
        const keys = mseKeyPair();
        this.#secret = keys.secret(ya);
        this.#req1 = sha1('req1', this.#secret);
        out.push(Buffer.concat([keys.publicKey, randomBytes(randomInt(0, MSE_MAX_PAD + 1))]));
        this.#stage = 'req1';
        return;
      }
      case 'req1': {
        if (!this.#in.skipTo(this.#req1!, 'HASH(req1)')) return;
        this.#in.take(20);
        this.#stage = 'provide';
        return;
      }
      case 'provide': {
        if (this.#in.length < 20 + 8 + 4 + 2) return;
        const obfuscated = this.#in.take(20);
        const req3 = sha1('req3', this.#secret!);
        const req2 = Buffer.alloc(20);
        for (let i = 0; i < 20; i++) req2[i] = obfuscated[i]! ^ req3[i]!;
        const infoHash = this.#lookup(req2);
        if (!infoHash) throw new ProtocolError('MSE: not a torrent we serve');
        this.#infoHash = infoHash;
        this.#decrypt = new Rc4(sha1('keyA', this.#secret!, infoHash));
        this.#encrypt = new Rc4(sha1('keyB', this.#secret!, infoHash));
        const head = this.#decrypt.process(this.#in.take(14));
        if (!head.subarray(0, 8).equals(VC)) throw new ProtocolError('MSE: bad verification constant');
        this.#provide = head.readUInt32BE(8);
        this.#padC = head.readUInt16BE(12);
        if (this.#padC > MSE_MAX_PAD) throw new ProtocolError(`MSE: PadC of ${this.#padC} bytes`);
        this.#stage = 'padc';
        return;
      }
      case 'padc': {
        if (this.#in.length < this.#padC + 2) return;
        const plain = this.#decrypt!.process(this.#in.take(this.#padC + 2));
        this.#iaLength = plain.readUInt16BE(this.#padC);
        if (this.#iaLength > MSE_MAX_IA) throw new ProtocolError(`MSE: initial payload of ${this.#iaLength} bytes`);
        this.#stage = 'ia';
        return;
      }
      case 'ia': {
        if (this.#in.length < this.#iaLength) return;
        const ia = this.#decrypt!.process(this.#in.take(this.#iaLength));
        const method = selectMethod(this.#provide, this.#requireRc4);
        const select = Buffer.alloc(8 + 4 + 2);
        select.writeUInt32BE(method, 8); // VC, crypto_select, len(padD) = 0
        out.push(this.#encrypt!.process(select));
        if (method === CRYPTO_RC4) {
          const cipher = { decrypt: this.#decrypt!, encrypt: this.#encrypt! };
          this.result = { infoHash: this.#infoHash!, rest: Buffer.concat([ia, cipher.decrypt.process(this.#in.drain())]), cipher };
        } else {
          this.result = { infoHash: this.#infoHash!, rest: Buffer.concat([ia, this.#in.drain()]) };
        }
        this.#stage = 'done';
        return;
      }
      default:
        return;
    }
  }
}

/** The stream method a responder selects from `provide`: plaintext when offered, unless RC4 is required. */
function selectMethod(provide: number, requireRc4: boolean): number {
  if (requireRc4) {
    if ((provide & CRYPTO_RC4) === 0) throw new ProtocolError('MSE: the peer does not offer RC4 and tt requires encryption');
    return CRYPTO_RC4;
  }
  if ((provide & CRYPTO_PLAINTEXT) !== 0) return CRYPTO_PLAINTEXT;
  if ((provide & CRYPTO_RC4) !== 0) return CRYPTO_RC4;
  throw new ProtocolError(`MSE: no stream method in common (crypto_provide ${provide})`);
}

type InitiatorStage = 'yb' | 'vc' | 'select' | 'padd' | 'done';

export interface MseInitiatorResult {
  /** Plaintext that followed the handshake (decrypted when RC4 was selected). */
  rest: Buffer;
  cipher?: StreamCipher;
}

/**
 * The initiating side of the MSE handshake, for connections tt opens. Send
 * `first` (Ya and PadA), then push() what the peer sends; it returns what to
 * send next, and `result` once the peer selected a method we offered. The
 * BitTorrent handshake follows through the chosen stream method (no initial
 * payload). Any violation throws a ProtocolError.
 */
export class MseInitiator {
  readonly first: Buffer;
  readonly #infoHash: Buffer;
  readonly #provide: number;
  readonly #keys = mseKeyPair();
  #stage: InitiatorStage = 'yb';
  readonly #in = new Intake();
  #decrypt: Rc4 | undefined;
  #encrypt: Rc4 | undefined;
  #vcMarker: Buffer | undefined;
  #select = 0;
  #padD = 0;
  result: MseInitiatorResult | undefined;

  /** `provide`: CRYPTO_PLAINTEXT and/or CRYPTO_RC4, the methods we accept. */
  constructor(infoHash: Buffer, provide: number) {
    if ((provide & (CRYPTO_PLAINTEXT | CRYPTO_RC4)) === 0) throw new RangeError('provide no stream method');
    this.#infoHash = infoHash;
    this.#provide = provide & (CRYPTO_PLAINTEXT | CRYPTO_RC4);
    this.first = Buffer.concat([this.#keys.publicKey, randomBytes(randomInt(0, MSE_MAX_PAD + 1))]);
  }

  push(chunk: Buffer): Buffer[] {
    if (this.#stage === 'done') throw new ProtocolError('MSE: data after the handshake');
    this.#in.append(chunk);
    const out: Buffer[] = [];
    for (let guard = 0; guard < 8 && !this.result; guard++) {
      const before: InitiatorStage = this.#stage;
      this.#advance(out);
      if (this.#stage === before) break;
    }
    return out;
  }

  #advance(out: Buffer[]): void {
    switch (this.#stage) {
      case 'yb': {
        if (this.#in.length < MSE_KEY_LENGTH) return;
        const secret = this.#keys.secret(this.#in.take(MSE_KEY_LENGTH));
        this.#encrypt = new Rc4(sha1('keyA', secret, this.#infoHash));
        this.#decrypt = new Rc4(sha1('keyB', secret, this.#infoHash));
        this.#vcMarker = new Rc4(sha1('keyB', secret, this.#infoHash)).process(VC);
        const req3 = sha1('req3', secret);
        const obfuscated = Buffer.from(req2Hash(this.#infoHash).map((b, i) => b ^ req3[i]!));
        const head = Buffer.alloc(8 + 4 + 2 + 2); // VC, crypto_provide, len(PadC) = 0, len(IA) = 0
        head.writeUInt32BE(this.#provide, 8);
        out.push(Buffer.concat([sha1('req1', secret), obfuscated, this.#encrypt.process(head)]));
        this.#stage = 'vc';
        return;
      }
      case 'vc': {
        if (!this.#in.skipTo(this.#vcMarker!, 'verification constant')) return;
        this.#decrypt!.process(this.#in.take(8)); // the VC itself: keeps the keystream in step
        this.#stage = 'select';
        return;
      }
      case 'select': {
        if (this.#in.length < 6) return;
        const plain = this.#decrypt!.process(this.#in.take(6));
        this.#select = plain.readUInt32BE(0);
        this.#padD = plain.readUInt16BE(4);
        if ((this.#select !== CRYPTO_PLAINTEXT && this.#select !== CRYPTO_RC4) || (this.#select & this.#provide) === 0) {
          throw new ProtocolError(`MSE: the peer selected method ${this.#select}, not one we offered`);
        }
        if (this.#padD > MSE_MAX_PAD) throw new ProtocolError(`MSE: PadD of ${this.#padD} bytes`);
        this.#stage = 'padd';
        return;
      }
      case 'padd': {
        if (this.#in.length < this.#padD) return;
        this.#decrypt!.process(this.#in.take(this.#padD));
        const rest = this.#in.drain();
        if (this.#select === CRYPTO_RC4) {
          const cipher = { decrypt: this.#decrypt!, encrypt: this.#encrypt! };
          this.result = { rest: cipher.decrypt.process(rest), cipher };
        } else {
          this.result = { rest };
        }
        this.#stage = 'done';
        return;
      }
      default:
        return;
    }
  }
}
