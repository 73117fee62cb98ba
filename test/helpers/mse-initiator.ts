/**
 * The initiating side of MSE, written from the protocol text, for tests that
 * drive tt's responder: independent of tt's own MseInitiator, so the two
 * cannot share a misreading of the protocol.
 */
import { randomBytes } from 'node:crypto';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4, Rc4, mseKeyPair, req2Hash, sha1 } from '../../src/wire/mse.js';

export interface MseInitiatorOptions {
  /** crypto_provide (default plaintext | RC4, as clients send by default). */
  provide?: number;
  padA?: number;
  padC?: number;
  /** Initial payload: usually the BitTorrent handshake. */
  ia?: Buffer;
  /** The torrent named (SKEY). */
  infoHash?: Buffer;
}

export function mseInitiator(opts: MseInitiatorOptions = {}) {
  const keys = mseKeyPair();
  const padA = randomBytes(opts.padA ?? 40);
  return {
    /** Step 1: Ya and PadA. */
    first: Buffer.concat([keys.publicKey, padA]),
    /**
     * Step 3, once the responder's Yb is known. `decryptReply` reads step 4;
     * `vcMarker` (the encrypted VC) is how an initiator finds step 4 behind PadB.
     */
    third(yb: Buffer): { bytes: Buffer; decryptReply: Rc4; vcMarker: Buffer; encryptAfter: Rc4 } {
      const secret = keys.secret(yb);
      const skey = opts.infoHash ?? Buffer.alloc(20);
      const enc = new Rc4(sha1('keyA', secret, skey));
      const req3 = sha1('req3', secret);
      const obfuscated = Buffer.from(req2Hash(skey).map((b, i) => b ^ req3[i]!));
      const padC = randomBytes(opts.padC ?? 0);
      const ia = opts.ia ?? Buffer.alloc(0);
      const head = Buffer.alloc(8 + 4 + 2);
      head.writeUInt32BE(opts.provide ?? CRYPTO_PLAINTEXT | CRYPTO_RC4, 8);
      head.writeUInt16BE(padC.length, 12);
      const iaLen = Buffer.alloc(2);
      iaLen.writeUInt16BE(ia.length);
      const encrypted = enc.process(Buffer.concat([head, padC, iaLen, ia]));
      const keyB = sha1('keyB', secret, skey);
      return {
        bytes: Buffer.concat([sha1('req1', secret), obfuscated, encrypted]),
        decryptReply: new Rc4(keyB),
        vcMarker: new Rc4(keyB).process(Buffer.alloc(8)),
        /** The keyA stream, continued past step 3: what the initiator sends once RC4 is selected. */
        encryptAfter: enc,
      };
    },
  };
}
