import { describe, expect, it } from 'vitest';
import { PEER_ID_PREFIX, generatePeerId, peerKey, toHex } from '../../../src/core/ids.js';

describe('peer ids (BEP 20 Azureus style)', () => {
  it('are 20 bytes: -TT0001- then 12 alphanumeric bytes', () => {
    expect(PEER_ID_PREFIX).toMatch(/^-TT\d{4}-$/);
    for (let i = 0; i < 50; i++) {
      const id = generatePeerId();
      expect(id).toHaveLength(20);
      expect(id.subarray(0, 8).toString('latin1')).toBe(PEER_ID_PREFIX);
      expect(id.subarray(8).toString('latin1')).toMatch(/^[0-9A-Za-z]{12}$/);
    }
  });

  it('differ between calls', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(generatePeerId().toString('latin1'));
    expect(seen.size).toBe(100);
  });
});

describe('toHex', () => {
  it('encodes exactly the view, not the whole underlying buffer', () => {
    const whole = Buffer.from([0x00, 0xab, 0xcd, 0xff]);
    expect(toHex(whole)).toBe('00abcdff');
    expect(toHex(whole.subarray(1, 3))).toBe('abcd');
    expect(toHex(new Uint8Array(whole.buffer, whole.byteOffset + 3, 1))).toBe('ff');
  });
});

describe('peerKey', () => {
  it('is host:port for IPv4 and [host]:port for IPv6', () => {
    expect(peerKey('127.0.0.1', 6881)).toBe('127.0.0.1:6881');
    expect(peerKey('::1', 6881)).toBe('[::1]:6881');
    expect(peerKey('2001:db8::1', 1)).toBe('[2001:db8::1]:1');
  });

  it('tells apart peers on one host by port', () => {
    expect(peerKey('127.0.0.1', 1)).not.toBe(peerKey('127.0.0.1', 2));
  });
});
