/**
 * urlTextProblem: the one rule for a URL's text in a .torrent, shared by the
 * reader (which drops an entry it refuses, after trimming its ends) and by
 * `tt create` (which refuses it): a tracker or web seed create writes is one
 * the reader keeps, byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { createTorrent } from '../../../src/metainfo/create.js';
import { parseTorrent, urlTextProblem } from '../../../src/metainfo/parse-torrent.js';

const CASES: [string, string | undefined][] = [
  ['http://127.0.0.1:6969/announce', undefined],
  ['udp://[::1]:6969', undefined],
  ['https://t.example/ann/ünï?passkey=a%20b', undefined],
  ['', 'it is empty'],
  ['http://127.0.0.1:32201/ann\nounce', 'a line break (U+000A)'],
  ['http://a/\rb', 'a line break (U+000D)'],
  ['http://a/announce\t', 'a tab (U+0009)'],
  ['http://a/an nounce', 'a space (U+0020)'],
  ['http://a/\u00a0', 'whitespace (U+00A0)'],
  ['http://a/\u2028', 'whitespace (U+2028)'],
  ['http://a/\x00', 'a control character (U+0000)'],
  ['http://a/\x1b[2J', 'a control character (U+001B)'],
  ['http://a/\x7f', 'a control character (U+007F)'],
  ['http://a/\u0085', 'a control character (U+0085)'],
];

describe('urlTextProblem', () => {
  it.each(CASES)('%j -> %j', (url, problem) => {
    const got = urlTextProblem(url);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });

  it('the reader keeps exactly the URLs the rule accepts (ends trimmed first), as trackers and as web seeds', () => {
    for (const [url] of CASES) {
      for (const padded of [url, ` ${url}\t`]) {
        const meta = parseTorrent(createTorrent('x', Buffer.from('x'), { announceList: [[padded], ['udp://127.0.0.1:1']], urlList: [padded] }));
        const kept = urlTextProblem(padded.trim()) === undefined;
        expect(meta.announceList, JSON.stringify(padded)).toEqual(kept ? [[padded.trim()], ['udp://127.0.0.1:1']] : [['udp://127.0.0.1:1']]);
        expect(meta.urlList, JSON.stringify(padded)).toEqual(kept ? [padded.trim()] : []);
      }
    }
  });
});
