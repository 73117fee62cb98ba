import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/core/errors.js';
import {
  HANDSHAKE_LENGTH,
  PROTOCOL_STRING,
  checkHandshakePrefix,
  defaultReserved,
  encodeHandshake,
  parseHandshake,
  supportsExtensionProtocol,
  supportsFastExtension,
} from '../../../src/wire/handshake.js';

const INFO_HASH = Buffer.from('0123456789abcdef0123', 'latin1');
const PEER_ID = Buffer.from('-TT0001-abcdefghijkl', 'latin1');

describe('handshake', () => {
  it('encodes the BEP 3 layout and parses it back', () => {
    const bytes = encodeHandshake(INFO_HASH, PEER_ID);
    expect(bytes).toHaveLength(HANDSHAKE_LENGTH);
    expect(bytes[0]).toBe(19);
    expect(bytes.subarray(1, 20).toString('latin1')).toBe(PROTOCOL_STRING);
    expect(bytes.subarray(20, 28).toString('hex')).toBe('0000000000100004');
    expect(bytes.subarray(28, 48).equals(INFO_HASH)).toBe(true);
    expect(bytes.subarray(48, 68).equals(PEER_ID)).toBe(true);
    const h = parseHandshake(bytes);
    expect(h.infoHash.equals(INFO_HASH)).toBe(true);
    expect(h.peerId.equals(PEER_ID)).toBe(true);
    expect(h.reserved.equals(defaultReserved())).toBe(true);
  });

  it('parses only the first 68 bytes and returns copies', () => {
    const bytes = Buffer.concat([encodeHandshake(INFO_HASH, PEER_ID, Buffer.alloc(8)), Buffer.from([0, 0, 0, 1, 1])]);
    const h = parseHandshake(bytes);
    bytes.fill(0xee);
    expect(h.infoHash.equals(INFO_HASH)).toBe(true);
    expect(h.peerId.equals(PEER_ID)).toBe(true);
    expect(supportsExtensionProtocol(h.reserved)).toBe(false);
    expect(supportsFastExtension(h.reserved)).toBe(false);
  });

  it('reads the reserved bits independently', () => {
    expect(supportsExtensionProtocol(defaultReserved())).toBe(true);
    expect(supportsFastExtension(defaultReserved())).toBe(true);
    expect(supportsExtensionProtocol(Buffer.from('0000000000100000', 'hex'))).toBe(true);
    expect(supportsFastExtension(Buffer.from('0000000000100000', 'hex'))).toBe(false);
    expect(supportsFastExtension(Buffer.from('0000000000000004', 'hex'))).toBe(true);
    expect(supportsExtensionProtocol(Buffer.from('ffffffffffef ffff'.replace(' ', ''), 'hex'))).toBe(false);
  });

  it('rejects a wrong pstrlen, a wrong protocol string and a short handshake', () => {
    const good = encodeHandshake(INFO_HASH, PEER_ID);
    const badLen = Buffer.from(good);
    badLen[0] = 18;
    expect(() => parseHandshake(badLen)).toThrow(/pstrlen is 18/);
    const badPstr = Buffer.from(good);
    badPstr.write('bittorrent', 1, 'latin1');
    expect(() => parseHandshake(badPstr)).toThrow(ProtocolError);
    expect(() => parseHandshake(good.subarray(0, 67))).toThrow(/67 bytes/);
  });

  it('checkHandshakePrefix fails on the first wrong byte, not after 68', () => {
    const good = encodeHandshake(INFO_HASH, PEER_ID);
    for (let n = 0; n <= HANDSHAKE_LENGTH; n++) expect(() => checkHandshakePrefix(good.subarray(0, n))).not.toThrow();
    expect(() => checkHandshakePrefix(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/pstrlen/);
    expect(() => checkHandshakePrefix(Buffer.from('\x13BitTorrent', 'latin1'))).not.toThrow();
    expect(() => checkHandshakePrefix(Buffer.from('\x13BitTorrenx', 'latin1'))).toThrow(/protocol string/);
  });

  it('refuses to encode fields of the wrong size', () => {
    expect(() => encodeHandshake(INFO_HASH.subarray(1), PEER_ID)).toThrow(RangeError);
    expect(() => encodeHandshake(INFO_HASH, PEER_ID.subarray(1))).toThrow(RangeError);
    expect(() => encodeHandshake(INFO_HASH, PEER_ID, Buffer.alloc(7))).toThrow(RangeError);
  });
});
