/**
 * Every crasher or hang the fuzz targets (or their large-input cases) found, kept as
 * a fixed input so it can never come back. Each case names what it was and the fix.
 */
import { describe, expect, it } from 'vitest';
import { MetainfoError } from '../../src/core/errors.js';
import { encode } from '../../src/metainfo/bencode.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { MAX_PEERS_PER_REPLY } from '../../src/tracker/compact.js';
import { parseAnnounceResponse } from '../../src/tracker/response.js';

/** A multi-file torrent whose files are `paths` (1 byte each), as raw bencode. */
function torrentWithPaths(paths: readonly string[][]): Buffer {
  const files = paths.map((p) => `d6:lengthi1e4:pathl${p.map((c) => `${Buffer.byteLength(c)}:${c}`).join('')}ee`);
  const pieces = Math.ceil(paths.length / 16384);
  return Buffer.concat([
    Buffer.from(`d4:infod5:filesl${files.join('')}e4:name1:x12:piece lengthi16384e6:pieces${pieces * 20}:`),
    Buffer.alloc(pieces * 20),
    Buffer.from('ee'),
  ]);
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

describe('fuzz regressions', () => {
  it('parseTorrent: a path of 100,000 components is checked in linear time (was quadratic: ~12 s at 30,000)', () => {
    const deep = Array.from({ length: 100_000 }, () => 'a');
    const bytes = torrentWithPaths([deep]);
    expect(bytes.length).toBeLessThan(400 * 1024); // a small file, not a large one
    const { value, ms } = timed(() => parseTorrent(bytes));
    expect(value.files[0]!.path).toHaveLength(100_001);
    expect(ms).toBeLessThan(1000);
  });

  it('parseTorrent: the linear collision check still refuses a deep file that is also a folder, and NFC duplicates where they collide', () => {
    const deep = Array.from({ length: 5000 }, () => 'a');
    const asFolder = (): unknown => parseTorrent(torrentWithPaths([deep.slice(0, 4000), deep]));
    expect(asFolder).toThrow(MetainfoError);
    expect(asFolder).toThrow(/files\[0\]\.path: file .* is also a folder/);
    // 'é' precomposed vs 'e' + combining acute: one file on macOS (normalization-insensitive), two on Linux
    const nfcPair = torrentWithPaths([['d', '\u00e9'], ['d', 'e\u0301']]);
    expect(() => parseTorrent(nfcPair, { platform: 'darwin' })).toThrow(/files\[1\]\.path: duplicate path/);
    expect(parseTorrent(nfcPair, { platform: 'linux' }).files).toHaveLength(2);
    // siblings that merely share a folder are fine
    expect(parseTorrent(torrentWithPaths([[...deep, 'x'], [...deep, 'y']])).files).toHaveLength(2);
  });

  /** A reply just under the 1 MiB transport cap, with compact entries of `entryBytes` (distinct, usable addresses). */
  function fullCompactList(entryBytes: number): Buffer {
    const list = Buffer.alloc(Math.floor((1024 * 1024 - 64) / entryBytes) * entryBytes);
    for (let at = 0, i = 0; at < list.length; at += entryBytes, i++) {
      list[at] = 10; // 10.x.y.z, or 0a00:... for IPv6: never unspecified
      list.writeUInt32BE(i + 1, at + entryBytes - 6);
      list.writeUInt16BE(1 + (i % 65535), at + entryBytes - 2);
    }
    return list;
  }

  it('parseAnnounceResponse: a 1 MiB compact peer list (~175,000 peers) is capped, not a RangeError (was push(...peers))', () => {
    const body = encode({ interval: 1800, peers: fullCompactList(6) });
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);
    const { value, ms } = timed(() => parseAnnounceResponse(body));
    expect(value.peers).toHaveLength(MAX_PEERS_PER_REPLY);
    expect(ms).toBeLessThan(1000);
  });

  it('parseAnnounceResponse: 1 MiB of peers6 after a large peers list is also capped', () => {
    const body = encode({ interval: 1800, peers: fullCompactList(6).subarray(0, 600_000), peers6: fullCompactList(18).subarray(0, 18 * 20_000) });
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);
    expect(parseAnnounceResponse(body).peers).toHaveLength(MAX_PEERS_PER_REPLY);
  });
});
