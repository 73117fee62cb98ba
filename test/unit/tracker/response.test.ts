import { describe, expect, it } from 'vitest';
import { TrackerError } from '../../../src/core/errors.js';
import { encode } from '../../../src/metainfo/bencode.js';
import { parseAnnounceResponse, parseScrapeResponse } from '../../../src/tracker/response.js';
import { MAX_PEERS_PER_REPLY } from '../../../src/tracker/compact.js';
import { TrackerRefusedError } from '../../../src/tracker/types.js';

function compact4(...peers: [string, number][]): Buffer {
  return Buffer.concat(
    peers.map(([ip, port]) => {
      const b = Buffer.alloc(6);
      ip.split('.').forEach((o, i) => (b[i] = Number(o)));
      b.writeUInt16BE(port, 4);
      return b;
    }),
  );
}

function reply(fields: Record<string, unknown>): Buffer {
  return encode(fields as never);
}

describe('parseAnnounceResponse', () => {
  it('reads compact IPv4 peers (BEP 23) with interval and counts', () => {
    const r = parseAnnounceResponse(
      reply({ interval: 900, 'min interval': 120, complete: 3, incomplete: 7, peers: compact4(['10.0.0.1', 6881], ['192.168.1.20', 51413]) }),
    );
    expect(r.peers).toEqual([
      { host: '10.0.0.1', port: 6881 },
      { host: '192.168.1.20', port: 51413 },
    ]);
    expect(r.interval).toBe(900);
    expect(r.minInterval).toBe(120);
    expect(r.complete).toBe(3);
    expect(r.incomplete).toBe(7);
    expect(r.warning).toBeUndefined();
  });

  it('reads peers6 (BEP 7) alongside IPv4 peers', () => {
    const v6 = Buffer.alloc(36);
    v6[15] = 1; // ::1
    v6.writeUInt16BE(7000, 16);
    Buffer.from('20010db8000000000000000000000042', 'hex').copy(v6, 18);
    v6.writeUInt16BE(7001, 34);
    const r = parseAnnounceResponse(reply({ interval: 1800, peers: compact4(['1.2.3.4', 1]), peers6: v6 }));
    expect(r.peers).toEqual([
      { host: '1.2.3.4', port: 1 },
      { host: '::1', port: 7000 },
      { host: '2001:db8::42', port: 7001 },
    ]);
  });

  it('reads the dictionary form with peer ids and skips malformed entries', () => {
    const id = Buffer.alloc(20, 0x41);
    const r = parseAnnounceResponse(
      reply({
        interval: 1800,
        peers: [
          { ip: '10.1.1.1', port: 1000, 'peer id': id },
          { ip: '::1', port: 1001 },
          { ip: 'tracker.example', port: 1002 }, // names are not resolved
          { port: 1003 },
          { ip: '10.1.1.2' },
          'junk',
        ],
      }),
    );
    expect(r.peers).toEqual([
      { host: '10.1.1.1', port: 1000, peerId: id },
      { host: '::1', port: 1001 },
    ]);
  });

  it('turns a failure reason into a TrackerRefusedError carrying the reason', () => {
    let caught: unknown;
    try {
      parseAnnounceResponse(reply({ 'failure reason': 'torrent not registered\x1b[31m' }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TrackerRefusedError);
    expect(caught).toBeInstanceOf(TrackerError);
    expect((caught as TrackerRefusedError).reason).toBe('torrent not registered [31m');
  });

  it('keeps peers and reports a warning message', () => {
    const r = parseAnnounceResponse(reply({ 'warning message': 'upgrade your client', interval: 600, peers: compact4(['1.1.1.1', 80]) }));
    expect(r.warning).toBe('upgrade your client');
    expect(r.peers).toHaveLength(1);
  });

  it.each([
    [0, 60],
    [1, 60],
    [2 ** 40, 3600],
    [-5, 60],
    [1800, 1800],
  ])('clamps interval %d to %d', (given, expected) => {
    expect(parseAnnounceResponse(reply({ interval: given, peers: '' })).interval).toBe(expected);
  });

  it('defaults a missing interval to 1800 s and clamps min interval to the interval', () => {
    const r = parseAnnounceResponse(reply({ peers: '', 'min interval': 99999 }));
    expect(r.interval).toBe(1800);
    expect(r.minInterval).toBe(1800);
  });

  it('ignores a trailing partial compact entry (length not a multiple of 6)', () => {
    const peers = Buffer.concat([compact4(['1.2.3.4', 5], ['5.6.7.8', 9]), Buffer.from([1, 2, 3])]);
    expect(parseAnnounceResponse(reply({ interval: 60, peers })).peers).toEqual([
      { host: '1.2.3.4', port: 5 },
      { host: '5.6.7.8', port: 9 },
    ]);
    const peers6 = Buffer.alloc(18 + 17);
    peers6[15] = 1;
    peers6.writeUInt16BE(99, 16);
    expect(parseAnnounceResponse(reply({ interval: 60, peers: '', peers6 })).peers).toEqual([{ host: '::1', port: 99 }]);
  });

  it('drops port 0, unspecified addresses and duplicates', () => {
    const peers = compact4(['1.2.3.4', 0], ['0.0.0.0', 80], ['1.2.3.4', 80], ['1.2.3.4', 80], ['1.2.3.4', 81]);
    expect(parseAnnounceResponse(reply({ interval: 60, peers })).peers).toEqual([
      { host: '1.2.3.4', port: 80 },
      { host: '1.2.3.4', port: 81 },
    ]);
  });

  it('keeps at most MAX_PEERS_PER_REPLY of thousands of peers', () => {
    const list: [string, number][] = [];
    for (let i = 0; i < 10_000; i++) list.push([`10.${(i >> 8) & 255}.${i & 255}.1`, 1000 + (i % 50000)]);
    const r = parseAnnounceResponse(reply({ interval: 60, peers: compact4(...list) }));
    expect(r.peers).toHaveLength(MAX_PEERS_PER_REPLY);
    expect(r.peers[0]).toEqual({ host: '10.0.0.1', port: 1000 });
  });

  it.each([
    ['empty body', Buffer.alloc(0)],
    ['HTML', Buffer.from('<html>502 Bad Gateway</html>')],
    ['a list', Buffer.from('le')],
    ['truncated', Buffer.from('d8:intervali60e5:peers')],
    ['hostile length', Buffer.from('l-3:e')],
    ['integer past 2^53', Buffer.from('d8:intervali99999999999999999999e5:peers0:e')],
    ['no peers key', Buffer.from('d8:intervali60ee')],
    ['peers of the wrong type', Buffer.from('d8:intervali60e5:peersi3ee')],
  ])('rejects garbage (%s) with a TrackerError', (_name, body) => {
    expect(() => parseAnnounceResponse(body)).toThrow(TrackerError);
  });

  it('keeps a tracker id', () => {
    expect(parseAnnounceResponse(reply({ interval: 60, peers: '', 'tracker id': 'xyz' })).trackerId).toBe('xyz');
  });
});

describe('parseScrapeResponse', () => {
  const hash = Buffer.from(Array.from({ length: 20 }, (_, i) => 200 + i / 2));

  it('finds the entry keyed by the raw info hash', () => {
    const files = new Map([[hash.toString('latin1'), { complete: 5, incomplete: 2, downloaded: 40 }]]);
    expect(parseScrapeResponse(encode({ files } as never), hash)).toEqual({ complete: 5, incomplete: 2, downloaded: 40 });
  });

  it('fails when the torrent is missing, refused or the reply is garbage', () => {
    expect(() => parseScrapeResponse(encode({ files: {} }), hash)).toThrow(/does not mention/);
    expect(() => parseScrapeResponse(encode({ 'failure reason': 'no scrape' }), hash)).toThrow(TrackerRefusedError);
    expect(() => parseScrapeResponse(Buffer.from('garbage'), hash)).toThrow(TrackerError);
  });
});
