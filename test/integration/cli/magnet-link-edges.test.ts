/**
 * Magnet links a black-box review found mishandled, through the built cli:
 * anything starting with magnet: is read as a magnet link (exit 4 with the
 * reason, never "no such file"); x.pe values without a port are named; a
 * v2-only link and a link with two different info hashes are refused as such.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../helpers/build.js';
import { expectOneLineError, tt } from '../../helpers/cli-sync.js';

const tmp = mkdtempSync(join(tmpdir(), 'tt-magnet-edges-'));
const HEX = '0123456789abcdef0123456789abcdef01234567';
const LOOPBACK = ['--bind', '127.0.0.1', '--port', '0'];

beforeAll(ensureBuilt, 130_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('magnet links: anything starting with magnet: is one (exit 4 with the reason when bad)', () => {
  it.each([
    ['magnet:', /empty: a magnet link is magnet:\?xt=urn:btih:/],
    [`magnet://?xt=urn:btih:${HEX}`, /'magnet:\/\/\?\.\.\.' is not how a magnet link starts/],
    [`MAGNET:xt=urn:btih:${HEX}`, /is not how a magnet link starts/],
    [`magnet:?xt=urn:btmh:1220${'ab'.repeat(32)}&x.pe=127.0.0.1:1`, /magnet\.xt: a v2-only link \(urn:btmh\): tt reads v1 links \(urn:btih\) only/],
    [`magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${'f'.repeat(40)}&x.pe=127.0.0.1:1`, /two different info hashes/],
    [`magnet:?xt=urn:btih:${HEX}&so=1,x&x.pe=127.0.0.1:1`, /magnet\.so: 'x' is not a file index/],
  ])('%s', (link, reason) => {
    const line = expectOneLineError(tt(['download', link, '--out', join(tmp, 'never'), ...LOOPBACK]), 4);
    expect(line).toMatch(/^tt: invalid magnet link: /);
    expect(line).toMatch(reason);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('the same hash twice is one torrent: no refusal (it goes on to look for peers)', () => {
    const r = tt(['download', `magnet:?xt=urn:btih:${HEX}&xt.2=urn:btih:${HEX.toUpperCase()}`, '--out', join(tmp, 'never'), ...LOOPBACK]);
    expect(expectOneLineError(r, 2)).toContain('names no tracker or peer (x.pe)');
  });

  it('an x.pe without a port is named, in the error when nothing else is left', () => {
    const r = tt(['download', `magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1`, '--out', join(tmp, 'never'), ...LOOPBACK]);
    expect(expectOneLineError(r, 2)).toBe(
      'tt: the magnet link names no tracker or usable peer (x.pe=127.0.0.1: not host:port) and no --peer given, tt cannot find peers: use --dht, or give peers with --peer host:port',
    );
  });

  it('an x.pe without a port beside a usable peer: a warning naming it, then the download goes on', () => {
    const r = tt(['download', `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1&x.pe=127.0.0.1:1`, '--out', join(tmp, 'never'), ...LOOPBACK, '--peer-timeout', '1s']);
    expect(r.status, r.stderr).toBe(5);
    expect(r.stderr).toContain("warning: the magnet link's x.pe=10.0.0.1: not host:port, ignored\n");
  });
});
