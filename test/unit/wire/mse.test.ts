/**
 * MSE receiving side: RC4 against published vectors, and MseResponder driven
 * by a minimal initiator written here from the protocol text (Diffie-Hellman,
 * HASH('req1'..), keyA/keyB streams): the handshake completes in any chunking,
 * the plaintext method is selected, and every bound is enforced.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../../../src/core/errors.js';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, MSE_MAX_PAD, MseResponder, Rc4, mseKeyPair, req2Hash } from '../../../src/wire/mse.js';
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

  it('refuses a peer that offers only the RC4 stream', () => {
    expect(() => exchange({ provide: CRYPTO_RC4 })).toThrow(ProtocolError);
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
