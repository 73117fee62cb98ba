/**
 * BEP 9 ut_metadata codec: the three messages round-trip in the byte layout
 * the BEP shows, and every malformed payload is a ProtocolError (never a hang:
 * the bencode package's `l-3:e` loop cannot reach us), unknown types are skipped.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/core/errors.js';
import { METADATA_PIECE_BYTES, MAX_METADATA_BYTES } from '../../../src/metainfo/metadata.js';
import { encodeExtendedHandshake, parseExtendedHandshake } from '../../../src/wire/extension.js';
import {
  encodeMetadataData,
  encodeMetadataReject,
  encodeMetadataRequest,
  parseMetadataMessage,
} from '../../../src/wire/ut-metadata.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('ut_metadata messages (BEP 9)', () => {
  it('encodes request and reject exactly as the BEP shows them', () => {
    expect(encodeMetadataRequest(0).toString('latin1')).toBe('d8:msg_typei0e5:piecei0ee');
    expect(encodeMetadataReject(3).toString('latin1')).toBe('d8:msg_typei2e5:piecei3ee');
    expect(parseMetadataMessage(encodeMetadataRequest(7))).toEqual({ type: 'request', piece: 7 });
    expect(parseMetadataMessage(encodeMetadataReject(7))).toEqual({ type: 'reject', piece: 7 });
  });

  it('a data message carries its 16 KiB slice after the dictionary; the last piece is short', () => {
    const metadata = Buffer.alloc(2 * METADATA_PIECE_BYTES + 100, 0xab);
    metadata.write('last', 2 * METADATA_PIECE_BYTES);
    const first = encodeMetadataData(metadata, 0);
    const head = `d8:msg_typei1e5:piecei0e10:total_sizei${metadata.length}ee`;
    expect(first.subarray(0, head.length).toString('latin1')).toBe(head);
    expect(first.length).toBe(head.length + METADATA_PIECE_BYTES);
    const parsedFirst = parseMetadataMessage(first);
    expect(parsedFirst).toMatchObject({ type: 'data', piece: 0, totalSize: metadata.length });
    expect(parsedFirst?.type === 'data' && parsedFirst.data.equals(metadata.subarray(0, METADATA_PIECE_BYTES))).toBe(true);
    const last = parseMetadataMessage(encodeMetadataData(metadata, 2));
    expect(last?.type === 'data' && last.data.length).toBe(100);
    expect(last?.type === 'data' && last.data.toString('latin1', 0, 4)).toBe('last');
  });

  it('skips an unknown msg_type (BEP 9: ignore it)', () => {
    expect(parseMetadataMessage(latin1('d8:msg_typei9e5:piecei0ee'))).toBeUndefined();
  });

  it.each([
    ['not bencode', 'hello'],
    ['a negative string length (the bencode package loops on it)', 'l-3:e'],
    ['a list', 'li1ei2ee'],
    ['no msg_type', 'd5:piecei0ee'],
    ['no piece', 'd8:msg_typei0ee'],
    ['a negative piece', 'd8:msg_typei0e5:piecei-1ee'],
    ['a piece beyond any metadata', `d8:msg_typei0e5:piecei${MAX_METADATA_BYTES / METADATA_PIECE_BYTES}ee`],
    ['a non-canonical integer', 'd8:msg_typei00e5:piecei0ee'],
    ['data without total_size', 'd8:msg_typei1e5:piecei0eexxxx'],
    ['data with total_size 0', 'd8:msg_typei1e5:piecei0e10:total_sizei0eee'],
    ['data with total_size beyond 10 MiB', `d8:msg_typei1e5:piecei0e10:total_sizei${MAX_METADATA_BYTES + 1}eexx`],
    ['data for a piece beyond total_size', 'd8:msg_typei1e5:piecei1e10:total_sizei10ee0123456789'],
    ['data shorter than its piece', 'd8:msg_typei1e5:piecei0e10:total_sizei10ee012345678'],
    ['data longer than its piece', 'd8:msg_typei1e5:piecei0e10:total_sizei10ee0123456789X'],
    ['a dictionary nested too deep', `d8:msg_typei0e5:piecei0e1:x${'l'.repeat(50)}${'e'.repeat(50)}e`],
  ])('%s is a ProtocolError', (_label, text) => {
    expect(() => parseMetadataMessage(latin1(text))).toThrow(ProtocolError);
  });

  it('the extended handshake advertises ut_metadata and metadata_size, and reads them back', () => {
    const payload = encodeExtendedHandshake({ m: { ut_metadata: 2 }, metadataSize: 31235, p: 6881 });
    expect(payload.toString('latin1')).toBe('d1:md11:ut_metadatai2ee13:metadata_sizei31235e1:pi6881ee');
    const h = parseExtendedHandshake(payload);
    expect(h.m.get('ut_metadata')).toBe(2);
    expect(h.metadataSize).toBe(31235);
  });
});
