/**
 * session/metadata-server.ts (BEP 9, serving): each piece of the info
 * dictionary is answered with its bytes, under the id the peer chose; per
 * connection at most MAX_METADATA_COPIES copies of the whole, then
 * METADATA_SPARE_REQUESTS rejects, then the connection is closed; a request
 * past the last piece, or while the peer's socket holds more than the high
 * water mark, gets a reject (counted all the same); a peer that did not
 * offer ut_metadata, and data or rejects sent to us, get nothing; malformed
 * messages throw.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/core/errors.js';
import { METADATA_PIECE_BYTES } from '../../../src/metainfo/metadata.js';
import type { Message } from '../../../src/wire/messages.js';
import { encodeMetadataData, encodeMetadataReject, encodeMetadataRequest, parseMetadataMessage } from '../../../src/wire/ut-metadata.js';
import { MAX_METADATA_COPIES, METADATA_SPARE_REQUESTS, MetadataServer, type MetadataPeer } from '../../../src/session/metadata-server.js';
import { SEND_HIGH_WATER_BYTES } from '../../../src/session/uploader.js';

const RAW_INFO = Buffer.from(Array.from({ length: 2 * METADATA_PIECE_BYTES + 1000 }, (_, i) => i & 255)); // 3 pieces, the last short
const PIECES = 3;
const server = new MetadataServer(RAW_INFO);

function peer(utMetadataId = 5) {
  const sent: Message[] = [];
  const closed: string[] = [];
  const p: MetadataPeer & { sent: Message[]; closed: string[]; conn: { writableLength: number } } = {
    sent,
    closed,
    utMetadataId,
    metadataRequests: 0,
    conn: { writableLength: 0, send: (m: Message) => void sent.push(m), close: (reason: string) => void closed.push(reason) },
  };
  return p;
}

/** What each reply was: `d<piece>` for data, `r<piece>` for a reject. */
function replies(p: { sent: Message[] }): string[] {
  return p.sent.map((m) => {
    if (m.type !== 'extended') throw new Error(`sent ${m.type}`);
    const msg = parseMetadataMessage(m.payload);
    return `${msg?.type === 'data' ? 'd' : 'r'}${msg?.piece}`;
  });
}

describe('MetadataServer', () => {
  it('answers each piece with its bytes under the id the peer chose', () => {
    const p = peer(9);
    for (let piece = 0; piece < PIECES; piece++) server.onMessage(p, encodeMetadataRequest(piece));
    expect(p.sent.map((m) => (m.type === 'extended' ? m.id : -1))).toEqual([9, 9, 9]);
    expect(p.sent.map((m) => (m.type === 'extended' ? m.payload : undefined))).toEqual([0, 1, 2].map((i) => encodeMetadataData(RAW_INFO, i)));
    expect(p.metadataRequests).toBe(3);
  });

  it('gives MAX_METADATA_COPIES copies, then rejects, then closes the connection', () => {
    const p = peer();
    const copies = MAX_METADATA_COPIES * PIECES;
    for (let k = 0; k < copies + METADATA_SPARE_REQUESTS; k++) server.onMessage(p, encodeMetadataRequest(k % PIECES));
    const got = replies(p);
    expect(got.slice(0, copies).every((r) => r.startsWith('d'))).toBe(true);
    expect(got.slice(copies).every((r) => r.startsWith('r'))).toBe(true);
    expect(got).toHaveLength(copies + METADATA_SPARE_REQUESTS);
    expect(p.closed).toEqual([]);
    server.onMessage(p, encodeMetadataRequest(0));
    expect(p.closed).toEqual([`protocol error: more than ${MAX_METADATA_COPIES} copies of the metadata asked for`]);
    expect(p.sent).toHaveLength(copies + METADATA_SPARE_REQUESTS); // no reply to the one that closed it
  });

  it('the bound is per connection', () => {
    const a = peer();
    for (let k = 0; k <= MAX_METADATA_COPIES * PIECES + METADATA_SPARE_REQUESTS; k++) server.onMessage(a, encodeMetadataRequest(0));
    expect(a.closed).toHaveLength(1);
    const b = peer();
    server.onMessage(b, encodeMetadataRequest(0));
    expect(replies(b)).toEqual(['d0']);
  });

  it('rejects a piece past the end, and any piece while the socket is full; both count', () => {
    const p = peer();
    server.onMessage(p, encodeMetadataRequest(PIECES));
    p.conn.writableLength = SEND_HIGH_WATER_BYTES + 1;
    server.onMessage(p, encodeMetadataRequest(0));
    p.conn.writableLength = SEND_HIGH_WATER_BYTES;
    server.onMessage(p, encodeMetadataRequest(1));
    expect(replies(p)).toEqual([`r${PIECES}`, 'r0', 'd1']);
    expect(p.metadataRequests).toBe(3);
  });

  it('ignores a peer without ut_metadata, and data or rejects sent to us', () => {
    const none = peer(0);
    server.onMessage(none, encodeMetadataRequest(0));
    expect([none.sent.length, none.metadataRequests]).toEqual([0, 0]);
    const p = peer();
    server.onMessage(p, encodeMetadataReject(0));
    server.onMessage(p, encodeMetadataData(RAW_INFO, 0));
    expect([p.sent.length, p.metadataRequests]).toEqual([0, 0]);
  });

  it('a malformed message throws a ProtocolError (the session closes that connection)', () => {
    expect(() => server.onMessage(peer(), Buffer.from('i5e'))).toThrow(ProtocolError);
  });
});
