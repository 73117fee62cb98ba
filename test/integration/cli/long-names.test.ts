/**
 * Names a disk cannot take as they are, through the built binary: a single-file torrent whose
 * name is 301 bytes (99 CJK characters + .flac; over ext4's 255) and a multi-file one with
 * control characters in its folder name. tt writes and looks for the names libtorrent gives
 * them (80 characters + .flac; `_` for each control character): `tt verify` and `tt seed` find
 * data placed there (before: `tt verify` failed, and `tt download` stopped at start with
 * "name too long (ENAMETOOLONG)", exit 6, leaving the folder it made); `tt info --json` lists
 * the files by those names, with the torrent's own name as `name`.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encode } from '../../../src/metainfo/bencode.js';
import { killAllTt, runTt } from './tt-cli.js';

const LONG = `${'日本語の長いファイル名'.repeat(9)}.flac`;
const ON_DISK = `${LONG.slice(0, 80)}.flac`; // 244 bytes, as libtorrent writes it
const PIECE = 16 * 1024;
const data = Buffer.alloc(20_000, 0x3c);
const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
const pieces = Buffer.concat([sha1(data.subarray(0, PIECE)), sha1(data.subarray(PIECE))]);
const work = mkdtempSync(join(tmpdir(), 'tt-long-names-'));

afterEach(async () => killAllTt());
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('names as written on disk', () => {
  it('single-file, a 301-byte name: verify finds the data under the 244-byte name; info lists it', async () => {
    const torrent = join(work, 'single.torrent');
    writeFileSync(torrent, encode({ info: { length: data.length, name: LONG, 'piece length': PIECE, pieces } }));
    const dir = join(work, 'single');
    mkdirSync(dir);
    writeFileSync(join(dir, ON_DISK), data);
    const verify = await runTt(['verify', torrent, '--dir', dir]);
    expect(verify.exit?.code, verify.describe()).toBe(0);
    const info = await runTt(['info', torrent, '--json']);
    expect(info.exit?.code, info.describe()).toBe(0);
    const doc = JSON.parse(info.stdout) as { name: string; files: { path: string[] }[] };
    expect(doc.name).toBe(LONG);
    expect(doc.files.map((f) => f.path)).toEqual([[ON_DISK]]);
  });

  it('multi-file, control characters in the folder name: verify finds album_x_y', async () => {
    const torrent = join(work, 'multi.torrent');
    const files = [{ length: 12_000, path: ['a\ttab.bin'] }, { length: 8_000, path: ['sub', LONG] }];
    writeFileSync(torrent, encode({ info: { files, name: 'album\nx\ry', 'piece length': PIECE, pieces } }));
    const dir = join(work, 'multi');
    mkdirSync(join(dir, 'album_x_y', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'album_x_y', 'a_tab.bin'), data.subarray(0, 12_000));
    writeFileSync(join(dir, 'album_x_y', 'sub', ON_DISK), data.subarray(12_000));
    const verify = await runTt(['verify', torrent, '--dir', dir]);
    expect(verify.exit?.code, verify.describe()).toBe(0);
    rmSync(join(dir, 'album_x_y'), { recursive: true });
    const none = await runTt(['verify', torrent, '--dir', dir]);
    expect(none.exit?.code, none.describe()).toBe(3);
    expect(none.stderr).toContain(`no data: ${join(dir, 'album_x_y')} does not exist`);
  });
});
