import { describe, expect, it } from 'vitest';
import { buildAnnounceUrl, buildScrapeUrl, parseQueryBytes, percentDecodeBytes, percentEncodeBytes, scrapeUrlFor } from '../../../src/tracker/url.js';
import type { AnnounceParams } from '../../../src/tracker/types.js';

function params(over: Partial<AnnounceParams> = {}): AnnounceParams {
  return {
    infoHash: Buffer.alloc(20, 0xab),
    peerId: Buffer.from('-TT0001-abcdefghijkl', 'latin1'),
    port: 6881,
    uploaded: 10,
    downloaded: 20,
    left: 30,
    key: 0xdeadbeef,
    ...over,
  };
}

function queryOf(url: string): Map<string, string> {
  const q = url.slice(url.indexOf('?') + 1);
  return new Map(q.split('&').map((kv) => kv.split('=') as [string, string]));
}

describe('percentEncodeBytes', () => {
  it('encodes every byte 0..255 and decodes back to the same bytes', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const encoded = percentEncodeBytes(all);
    expect(encoded).toMatch(/^[A-Za-z0-9\-._~%]+$/);
    for (let b = 0; b < 256; b++) {
      const one = percentEncodeBytes(Buffer.from([b]));
      const ch = String.fromCharCode(b);
      if (/[A-Za-z0-9\-._~]/.test(ch)) expect(one).toBe(ch);
      else expect(one).toBe(`%${b.toString(16).toUpperCase().padStart(2, '0')}`);
    }
    expect(percentDecodeBytes(encoded)).toEqual(all);
  });

  it('is not the UTF-8 encoding URLSearchParams would produce for high bytes', () => {
    expect(percentEncodeBytes(Buffer.from([0xff, 0x00, 0x20]))).toBe('%FF%00%20');
  });
});

describe('buildAnnounceUrl', () => {
  it('puts every info-hash byte in the query exactly once, byte by byte', () => {
    const infoHash = Buffer.from(Array.from({ length: 20 }, (_, i) => (i * 13 + 250) & 0xff));
    const url = buildAnnounceUrl('http://t.example/announce', params({ infoHash }));
    const q = queryOf(url);
    expect(percentDecodeBytes(q.get('info_hash')!)).toEqual(infoHash);
    expect(percentDecodeBytes(q.get('peer_id')!)!.toString('latin1')).toBe('-TT0001-abcdefghijkl');
    expect(q.get('port')).toBe('6881');
    expect(q.get('uploaded')).toBe('10');
    expect(q.get('downloaded')).toBe('20');
    expect(q.get('left')).toBe('30');
    expect(q.get('compact')).toBe('1');
    expect(q.get('no_peer_id')).toBe('1');
    expect(q.get('key')).toBe('deadbeef');
    expect(q.has('event')).toBe(false);
    expect(q.has('numwant')).toBe(false);
  });

  it('keeps an existing query (private tracker passkey) and appends with &', () => {
    const url = buildAnnounceUrl('http://t.example/announce?passkey=s3cr3t', params({ event: 'started', numwant: 50 }));
    expect(url.startsWith('http://t.example/announce?passkey=s3cr3t&info_hash=')).toBe(true);
    const q = queryOf(url);
    expect(q.get('passkey')).toBe('s3cr3t');
    expect(q.get('event')).toBe('started');
    expect(q.get('numwant')).toBe('50');
  });

  it('pads the key to 8 hex digits and echoes a tracker id', () => {
    const q = queryOf(buildAnnounceUrl('http://t/announce', params({ key: 1, trackerId: 'a b\u00ff' })));
    expect(q.get('key')).toBe('00000001');
    expect(q.get('trackerid')).toBe('a%20b%FF');
  });

  it('drops a fragment and never sends negative counters', () => {
    const url = buildAnnounceUrl('http://t/announce#frag', params({ left: -5 }));
    expect(url).not.toContain('#');
    expect(queryOf(url).get('left')).toBe('0');
  });
});

describe('scrapeUrlFor (BEP 48)', () => {
  it.each([
    ['http://example.com/announce', 'http://example.com/scrape'],
    ['http://example.com/x/announce', 'http://example.com/x/scrape'],
    ['http://example.com/announce.php', 'http://example.com/scrape.php'],
    ['http://example.com/announce?x2%0644', 'http://example.com/scrape?x2%0644'],
    ['http://example.com/a', undefined],
    ['http://example.com/announce?x=2/4', 'http://example.com/scrape?x=2/4'],
    ['http://example.com/x%064announce', undefined],
    ['udp://tracker.example:6969', 'udp://tracker.example:6969'],
  ])('%s -> %s', (announce, scrape) => {
    expect(scrapeUrlFor(announce)).toBe(scrape);
  });

  it('builds the scrape query with the encoded hash', () => {
    expect(buildScrapeUrl('http://t/scrape', Buffer.alloc(20, 0))).toBe(`http://t/scrape?info_hash=${'%00'.repeat(20)}`);
  });
});

describe('parseQueryBytes', () => {
  it('returns raw bytes and repeated parameters', () => {
    const q = parseQueryBytes('info_hash=%00%FFa&info_hash=b&port=1+2')!;
    expect(q.get('info_hash')).toEqual([Buffer.from([0, 0xff, 0x61]), Buffer.from('b')]);
    expect(q.get('port')![0]!.toString()).toBe('1 2');
  });

  it('refuses bad escapes and too many parameters', () => {
    expect(parseQueryBytes('a=%G0')).toBeUndefined();
    expect(parseQueryBytes('a=%0')).toBeUndefined();
    expect(parseQueryBytes(Array.from({ length: 65 }, (_, i) => `p${i}=1`).join('&'))).toBeUndefined();
  });
});
