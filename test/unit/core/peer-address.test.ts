import { describe, expect, it } from 'vitest';
import { ipOf, parseHostPort } from '../../../src/core/peer-address.js';

describe('ipOf: one spelling per address', () => {
  it('IPv4-mapped IPv6 in any spelling is its IPv4 address', () => {
    for (const h of ['::ffff:127.0.0.1', '::FFFF:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '0000:0000:0000:0000:0000:ffff:7f00:0001']) {
      expect(ipOf(h), h).toBe('127.0.0.1');
    }
  });

  it('IPv6 is compressed and lower-case, without a zone id', () => {
    for (const h of ['2001:db8::1', '2001:0DB8:0:0:0:0:0:1', '2001:db8:0::1', '2001:db8::1%eth0']) expect(ipOf(h), h).toBe('2001:db8::1');
    expect(ipOf('::1')).toBe('::1');
  });

  it('IPv4 and hostnames are themselves', () => {
    expect(ipOf('10.0.0.1')).toBe('10.0.0.1');
    expect(ipOf('Example.COM')).toBe('example.com');
  });
});

describe('parseHostPort', () => {
  it('takes IP literals and DNS names', () => {
    expect(parseHostPort('127.0.0.1:6881')).toEqual({ host: '127.0.0.1', port: 6881 });
    expect(parseHostPort('[::1]:6881')).toEqual({ host: '::1', port: 6881 });
    expect(parseHostPort('cafe.de:1')).toEqual({ host: 'cafe.de', port: 1 });
    expect(parseHostPort('host-1.example:65535')).toEqual({ host: 'host-1.example', port: 65535 });
  });

  it('refuses numeric spellings that are not IP literals, and brackets around anything but IPv6', () => {
    for (const t of ['127.1:1', '127.0.1:1', '2130706433:1', '0x7f.1:1', '0x7f000001:1', '1.2.3.4.5:1', '[127.0.0.1]:1', '[::::]:1', 'a:0', 'a:65536']) {
      expect(parseHostPort(t), t).toBeUndefined();
    }
  });
});
