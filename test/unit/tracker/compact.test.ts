import { describe, expect, it } from 'vitest';
import { encodeCompactPeer, filterPeers, parseCompactPeers, unmapIpv4 } from '../../../src/tracker/compact.js';

describe('compact peers', () => {
  it('round-trips IPv4 and IPv6 entries', () => {
    const v4 = encodeCompactPeer('192.168.0.254', 65535, 4)!;
    expect(v4).toEqual(Buffer.from([192, 168, 0, 254, 0xff, 0xff]));
    expect(parseCompactPeers(v4, 4)).toEqual([{ host: '192.168.0.254', port: 65535 }]);
    for (const host of ['::1', '2001:db8::1:0:0:1', 'fe80::abcd:1', '1:2:3:4:5:6:7:8']) {
      const v6 = encodeCompactPeer(host, 6881, 6)!;
      expect(v6).toHaveLength(18);
      expect(parseCompactPeers(v6, 6)).toEqual([{ host, port: 6881 }]);
    }
  });

  it('encodes an IPv4-mapped IPv6 address as IPv4 and refuses the wrong family', () => {
    expect(unmapIpv4('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(encodeCompactPeer('::ffff:127.0.0.1', 1, 4)).toEqual(Buffer.from([127, 0, 0, 1, 0, 1]));
    expect(encodeCompactPeer('::1', 1, 4)).toBeUndefined();
    expect(encodeCompactPeer('1.2.3.4', 1, 6)).toBeUndefined();
    expect(encodeCompactPeer('localhost', 1, 4)).toBeUndefined();
  });

  it('filters bad ports, non-IP hosts and duplicates, and caps the count', () => {
    const peers = [
      { host: '1.1.1.1', port: 0 },
      { host: '1.1.1.1', port: 70000 },
      { host: 'evil.example', port: 80 },
      { host: '::', port: 80 },
      { host: '::ffff:1.1.1.1', port: 80 },
      { host: '1.1.1.1', port: 80 },
      { host: '2.2.2.2', port: 80 },
    ];
    expect(filterPeers(peers)).toEqual([
      { host: '1.1.1.1', port: 80 },
      { host: '2.2.2.2', port: 80 },
    ]);
    expect(filterPeers(peers, 1)).toEqual([{ host: '1.1.1.1', port: 80 }]);
  });
});
