/**
 * wire/pex.ts (BEP 11 ut_pex): round trips with flags and both families,
 * libtorrent's message shape, the bounds a hostile sender meets (cut lists,
 * unusable addresses, flags of the wrong length, sizes), and that any bytes
 * at all either parse or fail as a ProtocolError.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/core/errors.js';
import { encode } from '../../../src/metainfo/bencode.js';
import { MAX_PEX_BYTES, MAX_PEX_PEERS, PEX_REACHABLE, PEX_SEED, encodePex, parsePex } from '../../../src/wire/pex.js';
import { mulberry32 } from '../../helpers/prng.js';

function compact4(host: string, port: number): Buffer {
  const b = Buffer.alloc(6);
  host.split('.').forEach((n, i) => (b[i] = Number(n)));
  b.writeUInt16BE(port, 4);
  return b;
}

describe('encodePex / parsePex', () => {
  it('round-trips added peers with their flags and dropped peers, IPv4 and IPv6', () => {
    const added = [
      { host: '10.0.0.1', port: 6881, flags: PEX_SEED | PEX_REACHABLE },
      { host: '192.168.1.20', port: 51413, flags: 0 },
      { host: '2001:db8::7', port: 6889, flags: PEX_SEED },
    ];
    const dropped = [
      { host: '10.0.0.9', port: 1 },
      { host: '2001:db8::8', port: 2 },
    ];
    const parsed = parsePex(encodePex({ added, dropped }));
    expect(parsed.added).toEqual(added);
    expect(parsed.dropped).toEqual(dropped);
  });

  it('writes the keys libtorrent reads: added, added.f (one byte per peer), dropped', () => {
    const bytes = encodePex({ added: [{ host: '1.2.3.4', port: 0x1a2b, flags: PEX_SEED }], dropped: [] });
    expect(bytes.toString('latin1')).toBe('d5:added6:\x01\x02\x03\x04\x1a\x2b7:added.f1:\x027:dropped0:e');
  });

  it('reads a libtorrent-shaped message (all six keys, empty IPv6 lists)', () => {
    const msg = encode({
      added: Buffer.concat([compact4('127.0.0.1', 6881), compact4('127.0.0.2', 6882)]),
      'added.f': Buffer.from([0x10, 0x02]),
      added6: Buffer.alloc(0),
      'added6.f': Buffer.alloc(0),
      dropped: compact4('127.0.0.3', 6883),
      dropped6: Buffer.alloc(0),
    });
    expect(parsePex(msg)).toEqual({
      added: [
        { host: '127.0.0.1', port: 6881, flags: 0x10 },
        { host: '127.0.0.2', port: 6882, flags: 0x02 },
      ],
      dropped: [{ host: '127.0.0.3', port: 6883 }],
    });
  });

  it('drops unusable addresses (0.x, multicast, broadcast, port 0, ::, ff00::/8) and duplicates', () => {
    const msg = encode({
      added: Buffer.concat([
        compact4('0.1.2.3', 1),
        compact4('224.0.0.1', 1),
        compact4('255.255.255.255', 1),
        compact4('8.8.8.8', 0),
        compact4('8.8.8.8', 53),
        compact4('8.8.8.8', 53),
      ]),
    });
    expect(parsePex(msg).added).toEqual([{ host: '8.8.8.8', port: 53, flags: 0 }]);
    const six = encodePex({ added: [{ host: '::', port: 1, flags: 0 }, { host: 'ff02::1', port: 1, flags: 0 }, { host: '::ffff:9.9.9.9', port: 9, flags: 0 }], dropped: [] });
    // an IPv4-mapped address is sent and read back as plain IPv4
    expect(parsePex(six).added).toEqual([{ host: '9.9.9.9', port: 9, flags: 0 }]);
  });

  it('flags of the wrong length are ignored, the peers kept', () => {
    const msg = encode({ added: Buffer.concat([compact4('1.1.1.1', 1), compact4('2.2.2.2', 2)]), 'added.f': Buffer.from([2]) });
    expect(parsePex(msg).added.map((p) => p.flags)).toEqual([0, 0]);
  });

  it('a trailing partial entry is ignored', () => {
    const msg = encode({ added: Buffer.concat([compact4('1.1.1.1', 1), Buffer.from([9, 9, 9])]) });
    expect(parsePex(msg).added).toEqual([{ host: '1.1.1.1', port: 1, flags: 0 }]);
  });

  it(`takes at most ${MAX_PEX_PEERS} peers from one message, however many it names`, () => {
    const many = Buffer.concat(Array.from({ length: 5000 }, (_, i) => compact4(`10.${(i >> 8) & 255}.${i & 255}.1`, 1000 + (i % 60000))));
    const parsed = parsePex(encode({ added: many, dropped: many }));
    expect(parsed.added.length).toBe(MAX_PEX_PEERS);
    expect(parsed.dropped.length).toBe(MAX_PEX_PEERS);
  });

  it('refuses what is not a bencoded dictionary, and oversized payloads, as a ProtocolError', () => {
    for (const bad of [Buffer.from('le'), Buffer.from('i1e'), Buffer.from('d5:added'), Buffer.from('l-3:e'), Buffer.alloc(0), Buffer.from('d5:addedi-0ee')]) {
      expect(() => parsePex(bad), bad.toString('latin1')).toThrow(ProtocolError);
    }
    expect(() => parsePex(Buffer.alloc(MAX_PEX_BYTES + 1, 0x61))).toThrow(/at most/);
  });

  it('ignores keys of the wrong type', () => {
    expect(parsePex(encode({ added: 5, dropped: [1, 2], 'added.f': { x: 1 } }))).toEqual({ added: [], dropped: [] });
  });

  it('never throws anything but a ProtocolError on mutated messages', () => {
    const random = mulberry32(3);
    const base = encodePex({ added: [{ host: '10.1.2.3', port: 80, flags: 2 }, { host: '2001:db8::1', port: 81, flags: 0 }], dropped: [{ host: '10.9.9.9', port: 9 }] });
    for (let round = 0; round < 3000; round++) {
      const b = Buffer.from(base);
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) b[Math.floor(random() * b.length)] = Math.floor(random() * 256);
      const cut = random() < 0.2 ? b.subarray(0, Math.floor(random() * b.length)) : b;
      try {
        const parsed = parsePex(cut);
        expect(parsed.added.length).toBeLessThanOrEqual(MAX_PEX_PEERS);
      } catch (err) {
        expect(err, `round ${round}`).toBeInstanceOf(ProtocolError);
      }
    }
  });
});
