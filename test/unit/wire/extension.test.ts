import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/core/errors.js';
import { MAX_EXTENDED_HANDSHAKE_BYTES, encodeExtendedHandshake, parseExtendedHandshake } from '../../../src/wire/extension.js';

describe('extended handshake (BEP 10)', () => {
  it('round-trips what we advertise, keys sorted', () => {
    const payload = encodeExtendedHandshake({ m: { ut_metadata: 2, ut_pex: 1 }, v: 'tt 0.1.0', reqq: 500, p: 6881 });
    expect(payload.toString('latin1')).toBe('d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e4:reqqi500e1:v8:tt 0.1.0e');
    const h = parseExtendedHandshake(payload);
    expect([...h.m]).toEqual([
      ['ut_metadata', 2],
      ['ut_pex', 1],
    ]);
    expect(h).toMatchObject({ v: 'tt 0.1.0', reqq: 500, p: 6881 });
    expect(h.metadataSize).toBeUndefined();
  });

  it('always sends an m dictionary', () => {
    expect(encodeExtendedHandshake({}).toString('latin1')).toBe('d1:mdee');
    expect(parseExtendedHandshake(encodeExtendedHandshake({})).m.size).toBe(0);
  });

  it('reads metadata_size and yourip as libtorrent sends them', () => {
    const h = parseExtendedHandshake(
      Buffer.from('d12:complete_agoi-1e1:md11:ut_metadatai3ee13:metadata_sizei31235e1:pi6881e4:reqqi500e1:v16:libtorrent/2.0.86:yourip4:\x7f\x00\x00\x01e', 'latin1'),
    );
    expect(h.metadataSize).toBe(31235);
    expect(h.yourip?.toString('hex')).toBe('7f000001');
    expect(h.v).toBe('libtorrent/2.0.8');
    expect(h.m.get('ut_metadata')).toBe(3);
  });

  it('ignores unknown keys and drops wrongly typed or out-of-range known ones', () => {
    const h = parseExtendedHandshake(
      Buffer.from('d1:md1:ai0e1:bi256e1:c3:xyz1:di-1e1:ei255ee1:pi70000e4:reqqi0e1:vi5e6:yourip3:abc3:zzzli1eee', 'latin1'),
    );
    expect([...h.m]).toEqual([
      ['a', 0],
      ['e', 255],
    ]);
    expect(h.p).toBeUndefined();
    expect(h.reqq).toBeUndefined();
    expect(h.v).toBeUndefined();
    expect(h.yourip).toBeUndefined();
    expect(parseExtendedHandshake(Buffer.from('d1:mi5ee')).m.size).toBe(0);
  });

  it('replaces control characters in the client name and bounds its length', () => {
    const h = parseExtendedHandshake(Buffer.from(`d1:v${'\x1b[31m'.length + 100}:\x1b[31m${'x'.repeat(100)}e`, 'latin1'));
    expect(h.v?.startsWith('?[31m')).toBe(true);
    expect(h.v?.length).toBe(64);
  });

  it('rejects garbage, non-dicts, truncation and oversized payloads with ProtocolError', () => {
    for (const bad of ['', 'l-3:e', 'i5e', 'le', 'd1:m', 'd1:mdee trailing', 'd1:md11:ut_metadatai2e', 'x']) {
      expect(() => parseExtendedHandshake(Buffer.from(bad, 'latin1')), JSON.stringify(bad)).toThrow(ProtocolError);
    }
    const deep = Buffer.from('d1:x' + 'l'.repeat(50) + 'e'.repeat(50) + 'e');
    expect(() => parseExtendedHandshake(deep)).toThrow(ProtocolError);
    const huge = Buffer.from(`d1:v${MAX_EXTENDED_HANDSHAKE_BYTES}:${'a'.repeat(MAX_EXTENDED_HANDSHAKE_BYTES)}e`);
    expect(() => parseExtendedHandshake(huge)).toThrow(ProtocolError);
  });
});
