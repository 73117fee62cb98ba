import { describe, expect, it } from 'vitest';
import {
  ANNOUNCE_REQUEST_BYTES,
  UDP_PROTOCOL_ID,
  decodeUdpReply,
  decodeUdpRequest,
  encodeAnnounceReply,
  encodeAnnounceRequest,
  encodeConnectReply,
  encodeConnectRequest,
  encodeErrorReply,
  encodeScrapeReply,
  encodeScrapeRequest,
} from '../../../src/tracker/udp-codec.js';
import type { AnnounceParams } from '../../../src/tracker/types.js';

const cid = Buffer.from('0102030405060708', 'hex');
const p: AnnounceParams = {
  infoHash: Buffer.alloc(20, 0x11),
  peerId: Buffer.alloc(20, 0x22),
  port: 51413,
  uploaded: 2 ** 40,
  downloaded: 5,
  left: 7,
  key: 0xcafebabe,
  event: 'started',
  numwant: 30,
};

describe('BEP 15 requests', () => {
  it('connect request has the protocol id, action 0 and the transaction id', () => {
    const b = encodeConnectRequest(0x01020304);
    expect(b.toString('hex')).toBe('0000041727101980' + '00000000' + '01020304');
    expect(decodeUdpRequest(b)).toEqual({ action: 'connect', transactionId: 0x01020304 });
  });

  it('connect request with a wrong protocol id is refused by the server decoder', () => {
    const b = encodeConnectRequest(1);
    b.writeBigUInt64BE(UDP_PROTOCOL_ID + 1n, 0);
    expect(decodeUdpRequest(b)).toBeUndefined();
  });

  it('announce request is 98 bytes with fields at their offsets and decodes back', () => {
    const b = encodeAnnounceRequest(cid, 77, p);
    expect(b).toHaveLength(ANNOUNCE_REQUEST_BYTES);
    expect(b.subarray(0, 8)).toEqual(cid);
    expect(b.readUInt32BE(8)).toBe(1);
    expect(b.readBigUInt64BE(72)).toBe(2n ** 40n); // uploaded
    expect(b.readUInt32BE(80)).toBe(2); // started
    expect(b.readInt32BE(92)).toBe(30);
    expect(b.readUInt16BE(96)).toBe(51413);
    expect(decodeUdpRequest(b)).toEqual({
      action: 'announce',
      connectionId: cid,
      transactionId: 77,
      infoHash: p.infoHash,
      peerId: p.peerId,
      downloaded: 5,
      left: 7,
      uploaded: 2 ** 40,
      event: 'started',
      key: 0xcafebabe,
      numwant: 30,
      port: 51413,
    });
  });

  it('announce without event or numwant sends 0 and -1', () => {
    const { event: _e, numwant: _n, ...rest } = p;
    const b = encodeAnnounceRequest(cid, 1, rest);
    expect(b.readUInt32BE(80)).toBe(0);
    expect(b.readInt32BE(92)).toBe(-1);
  });

  it('server decoder refuses short announces, unknown events and ragged scrapes', () => {
    const b = encodeAnnounceRequest(cid, 1, p);
    expect(decodeUdpRequest(b.subarray(0, 97))).toBeUndefined();
    const bad = Buffer.from(b);
    bad.writeUInt32BE(9, 80);
    expect(decodeUdpRequest(bad)).toBeUndefined();
    const scrape = encodeScrapeRequest(cid, 5, [p.infoHash, p.peerId]);
    expect(decodeUdpRequest(scrape)).toEqual({ action: 'scrape', connectionId: cid, transactionId: 5, infoHashes: [p.infoHash, p.peerId] });
    expect(decodeUdpRequest(scrape.subarray(0, 30))).toBeUndefined();
    expect(decodeUdpRequest(scrape.subarray(0, 16))).toBeUndefined();
    expect(decodeUdpRequest(Buffer.alloc(15))).toBeUndefined();
  });
});

describe('BEP 15 replies', () => {
  it('connect reply round-trips', () => {
    expect(decodeUdpReply(encodeConnectReply(9, cid), 4)).toEqual({ action: 'connect', transactionId: 9, connectionId: cid });
    expect(decodeUdpReply(encodeConnectReply(9, cid).subarray(0, 15), 4)).toBeUndefined();
  });

  it('announce reply entries are 6 bytes on IPv4 and 18 on IPv6; a partial entry is ignored', () => {
    const v4 = Buffer.from([127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80, 9, 9]);
    const r = decodeUdpReply(encodeAnnounceReply(3, { interval: 120, leechers: 4, seeders: 5, compactPeers: v4 }), 4);
    expect(r).toEqual({
      action: 'announce',
      transactionId: 3,
      interval: 120,
      leechers: 4,
      seeders: 5,
      peers: [
        { host: '127.0.0.1', port: 6881 },
        { host: '10.0.0.2', port: 80 },
      ],
    });
    const v6 = Buffer.alloc(18);
    v6[15] = 1;
    v6.writeUInt16BE(6881, 16);
    const r6 = decodeUdpReply(encodeAnnounceReply(3, { interval: 1, leechers: 0, seeders: 0, compactPeers: v6 }), 6);
    expect(r6 && r6.action === 'announce' && r6.peers).toEqual([{ host: '::1', port: 6881 }]);
    expect(decodeUdpReply(Buffer.alloc(19, 0).fill(1, 3, 4), 4)).toBeUndefined();
  });

  it('scrape reply maps seeders/completed/leechers', () => {
    const b = encodeScrapeReply(8, [{ complete: 1, downloaded: 2, incomplete: 3 }]);
    expect(decodeUdpReply(b, 4)).toEqual({ action: 'scrape', transactionId: 8, files: [{ complete: 1, downloaded: 2, incomplete: 3 }] });
  });

  it('error reply carries its message; unknown actions and short packets are undefined', () => {
    expect(decodeUdpReply(encodeErrorReply(4, 'go away'), 4)).toEqual({ action: 'error', transactionId: 4, message: 'go away' });
    const unknown = Buffer.alloc(16);
    unknown.writeUInt32BE(7, 0);
    expect(decodeUdpReply(unknown, 4)).toBeUndefined();
    expect(decodeUdpReply(Buffer.alloc(7), 4)).toBeUndefined();
  });
});
