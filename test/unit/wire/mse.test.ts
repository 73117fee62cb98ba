/**
 * MSE receiving side: RC4 against published vectors, and MseResponder driven
 * by a minimal initiator written here from the protocol text (Diffie-Hellman,
 * HASH('req1'..), keyA/keyB streams): the handshake completes in any chunking,
 * the plaintext method is selected, and every bound is enforced.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../../../src/core/errors.js';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, MSE_MAX_PAD, MseInitiator, MseResponder, Rc4, mseKeyPair, req2Hash } from '../../../src/wire/mse.js';
import { mseInitiator, type MseInitiatorOptions } from '../../helpers/mse-initiator.js';

describe('Rc4', () => {
  it.each([
    ['Key', 'Plaintext', 'bbf316e8d940af0ad3'],
    ['Wiki', 'pedia', '1021bf0420'],
    ['Secret', 'Attack at dawn', '45a01f645fc35b383552544b9bf5'],
  ])('RC4(%s, %s) = %s (no discard)', (key, text, hex) => {
    expect(new Rc4(Buffer.from(key), 0).process(Buffer.from(text)).toString('hex')).toBe(hex);
  });

  it('is a stream: any split gives the same bytes, and it decrypts itself', () => {
    const key = randomBytes(20);
    const data = randomBytes(5000);
    const whole = new Rc4(key).process(data);
    const r = new Rc4(key);
    const parts = Buffer.concat([r.process(data.subarray(0, 7)), r.process(data.subarray(7, 4000)), r.process(data.subarray(4000))]);
    expect(parts.equals(whole)).toBe(true);
    expect(new Rc4(key).process(whole).equals(data)).toBe(true);
  });
});

const INFO_HASH = Buffer.alloc(20, 0x5a);
const initiator = (opts: MseInitiatorOptions = {}) => mseInitiator({ infoHash: INFO_HASH, ...opts });

function responder(): MseResponder {
  return new MseResponder((req2) => (req2.equals(req2Hash(INFO_HASH)) ? INFO_HASH : undefined));
}

/** Runs a whole exchange; `chunk` splits what the initiator sends. Returns the responder and its reply after Yb. */
function exchange(opts: MseInitiatorOptions & { chunk?: number; after?: Buffer } = {}) {
  const a = initiator(opts);
  const b = responder();
  const feed = (bytes: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    const size = opts.chunk ?? bytes.length;
    for (let i = 0; i < bytes.length; i += size) out.push(...b.push(bytes.subarray(i, i + size)));
    return out;
  };
  const second = Buffer.concat(feed(a.first));
  expect(second.length).toBeGreaterThanOrEqual(96);
  expect(second.length).toBeLessThanOrEqual(96 + MSE_MAX_PAD);
  const { bytes, decryptReply } = a.third(second.subarray(0, 96));
  const fourth = Buffer.concat(feed(Buffer.concat([bytes, opts.after ?? Buffer.alloc(0)])));
  return { b, reply: decryptReply.process(fourth) };
}

describe('mseKeyPair', () => {
  it('pairs made in between (one shared DH group object) do not change an earlier pair\'s secret', () => {
    const a = mseKeyPair();
    const b = mseKeyPair();
    for (let i = 0; i < 3; i++) mseKeyPair(); // each sets its own private key on the shared object
    const ab = a.secret(b.publicKey);
    expect(ab).toHaveLength(96);
    expect(ab.equals(b.secret(a.publicKey))).toBe(true);
    expect(a.publicKey.equals(b.publicKey)).toBe(false);
    expect(ab.equals(a.secret(mseKeyPair().publicKey))).toBe(false);
  });
});

describe('MseResponder', () => {
  it('completes the handshake, selects the plaintext stream and hands over the initial payload', () => {
    const ia = Buffer.from('\x13BitTorrent protocol and the rest of a handshake');
    const { b, reply } = exchange({ ia, after: Buffer.from('plain bytes after') });
    expect(reply.subarray(0, 8).equals(Buffer.alloc(8))).toBe(true); // VC
    expect(reply.readUInt32BE(8)).toBe(CRYPTO_PLAINTEXT);
    expect(reply.readUInt16BE(12)).toBe(0); // no padD
    expect(reply.length).toBe(14);
    expect(b.result?.infoHash.equals(INFO_HASH)).toBe(true);
    expect(b.result?.rest.toString()).toBe(`${ia.toString()}plain bytes after`);
  });

  it('works fed one byte at a time, with the largest paddings', () => {
    const { b, reply } = exchange({ chunk: 1, padA: MSE_MAX_PAD, padC: MSE_MAX_PAD, ia: Buffer.from('x') });
    expect(reply.readUInt32BE(8)).toBe(CRYPTO_PLAINTEXT);
    expect(b.result?.rest.toString()).toBe('x');
  });

  it('a peer offering only RC4 gets the RC4 stream: bytes after the handshake are decrypted, and both ciphers continue', () => {
    const ia = Buffer.from('handshake in IA');
    const a = initiator({ provide: CRYPTO_RC4, ia });
    const b = responder();
    const yb = Buffer.concat(b.push(a.first)).subarray(0, 96);
    const { bytes, decryptReply, encryptAfter } = a.third(yb);
    const later = encryptAfter.process(Buffer.from('encrypted stream bytes'));
    const reply = decryptReply.process(Buffer.concat(b.push(Buffer.concat([bytes, later]))));
    expect(reply.readUInt32BE(8)).toBe(CRYPTO_RC4);
    expect(b.result?.cipher).toBeDefined();
    expect(b.result?.rest.toString()).toBe('handshake in IAencrypted stream bytes');
    // tt's next bytes to the peer continue the keyB stream the peer decrypts with
    const sent = b.result!.cipher!.encrypt.process(Buffer.from('from tt'));
    expect(decryptReply.process(sent).toString()).toBe('from tt');
    expect(b.result!.cipher!.decrypt.process(encryptAfter.process(Buffer.from('more'))).toString()).toBe('more');
  });

  it('requireRc4: selects RC4 even when plaintext is offered; refuses a peer offering plaintext only', () => {
    const a = initiator();
    const b = new MseResponder((req2) => (req2.equals(req2Hash(INFO_HASH)) ? INFO_HASH : undefined), { requireRc4: true });
    const yb = Buffer.concat(b.push(a.first)).subarray(0, 96);
    const { bytes, decryptReply } = a.third(yb);
    expect(decryptReply.process(Buffer.concat(b.push(bytes))).readUInt32BE(8)).toBe(CRYPTO_RC4);
    const c = initiator({ provide: CRYPTO_PLAINTEXT });
    const d = new MseResponder((req2) => (req2.equals(req2Hash(INFO_HASH)) ? INFO_HASH : undefined), { requireRc4: true });
    const yd = Buffer.concat(d.push(c.first)).subarray(0, 96);
    expect(() => d.push(c.third(yd).bytes)).toThrow(/requires encryption/);
  });

  it('refuses a torrent it does not serve', () => {
    expect(() => exchange({ infoHash: Buffer.alloc(20, 1) })).toThrow(/not a torrent we serve/);
  });

  it('refuses padding past 512 bytes and garbage that never contains HASH(req1)', () => {
    expect(() => exchange({ padA: MSE_MAX_PAD + 30 })).toThrow(/512/);
    const b = responder();
    b.push(randomBytes(96));
    expect(() => b.push(randomBytes(700))).toThrow(/req1/);
  });

  it('a wrong verification constant is refused', () => {
    const a = initiator();
    const b = responder();
    const yb = Buffer.concat(b.push(a.first)).subarray(0, 96);
    const { bytes } = a.third(yb);
    bytes[40] = bytes[40]! ^ 0xff; // first byte of the encrypted VC
    expect(() => b.push(bytes)).toThrow(/verification constant/);
  });
});

describe('MseInitiator (tt dialing out) against MseResponder', () => {
  function handshake(provide: number, responderOpts: { requireRc4?: boolean } = {}, chunk = 0) {
    const a = new MseInitiator(INFO_HASH, provide);
    const b = new MseResponder((req2) => (req2.equals(req2Hash(INFO_HASH)) ? INFO_HASH : undefined), responderOpts);
    const split = (bytes: Buffer): Buffer[] => {
      if (chunk === 0) return [bytes];
      const out: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += chunk) out.push(bytes.subarray(i, i + chunk));
      return out;
    };
    let toB = [a.first];
    for (let round = 0; round < 6 && !(a.result && b.result); round++) {
      const toA: Buffer[] = [];
      for (const bytes of toB) for (const part of split(bytes)) toA.push(...b.push(part));
      toB = [];
      for (const bytes of toA) for (const part of split(bytes)) toB.push(...a.push(part));
    }
    return { a, b };
  }

  it('plaintext offered: plaintext selected, nothing left over, no cipher', () => {
    const { a, b } = handshake(CRYPTO_PLAINTEXT | CRYPTO_RC4);
    expect(a.result).toEqual({ rest: Buffer.alloc(0) });
    expect(b.result?.cipher).toBeUndefined();
  });

  it('RC4 only, fed a byte at a time: both sides hold matching ciphers both ways', () => {
    const { a, b } = handshake(CRYPTO_RC4, {}, 1);
    const ca = a.result!.cipher!;
    const cb = b.result!.cipher!;
    expect(cb.decrypt.process(ca.encrypt.process(Buffer.from('tt -> peer'))).toString()).toBe('tt -> peer');
    expect(ca.decrypt.process(cb.encrypt.process(Buffer.from('peer -> tt'))).toString()).toBe('peer -> tt');
  });

  it('a responder that requires RC4 and an initiator offering both agree on RC4', () => {
    const { a } = handshake(CRYPTO_PLAINTEXT | CRYPTO_RC4, { requireRc4: true });
    expect(a.result?.cipher).toBeDefined();
  });

  it('refuses a selection it did not offer, and a reply with no verification constant', () => {
    const a = new MseInitiator(INFO_HASH, CRYPTO_RC4);
    const b = new MseResponder((req2) => (req2.equals(req2Hash(INFO_HASH)) ? INFO_HASH : undefined));
    const yb = Buffer.concat(b.push(a.first));
    // a forged reply: right key, then garbage where the encrypted VC should be
    a.push(yb.subarray(0, 96));
    expect(() => a.push(randomBytes(700))).toThrow(/verification constant/);
    const c = new MseInitiator(INFO_HASH, CRYPTO_PLAINTEXT);
    const d = new MseResponder((req2) => (req2.equals(req2Hash(INFO_HASH)) ? INFO_HASH : undefined), { requireRc4: true });
    const third = c.push(Buffer.concat(d.push(c.first)).subarray(0, 96));
    expect(() => d.push(Buffer.concat(third))).toThrow(/requires encryption/);
  });
});
