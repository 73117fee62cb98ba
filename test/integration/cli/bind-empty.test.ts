/**
 * `--bind ''` (an unset $ADDR in a script) through the built cli: Node would
 * listen on every interface for an empty host, so it is a usage error (exit
 * 2) for download, seed and tracker, never a client exposed on all of them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../helpers/build.js';
import { expectOneLineError, tt } from '../../helpers/cli-sync.js';

const tmp = mkdtempSync(join(tmpdir(), 'tt-bind-'));
const HEX = '0123456789abcdef0123456789abcdef01234567';

beforeAll(ensureBuilt, 130_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('--bind with an empty address (an unset $ADDR) is a usage error, never every interface', () => {
  const torrent = join(tmp, 'none.torrent');
  it.each([
    ['download', ['download', torrent, '--bind', '']],
    ['download (magnet)', ['download', `magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1:1`, '--out', tmp, '--bind=']],
    ['seed', ['seed', torrent, '--dir', tmp, '--bind', '  ']],
    ['tracker', ['tracker', '--port', '0', '--bind', '']],
  ])('%s', (_, args) => {
    expect(expectOneLineError(tt(args), 2)).toMatch(/^tt: option '--bind <address>' argument '\s*' is invalid\. an empty address would listen on every interface/);
  });
});
