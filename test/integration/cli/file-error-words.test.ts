/**
 * File errors through the built cli, said in words (never a bare ENOENT):
 * tt create of a missing or unreadable path; --save-torrent into a folder
 * that does not exist is refused before anything is fetched; tt create -o -
 * onto a full disk does not claim it created anything.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../helpers/build.js';
import { ROOT, expectOneLineError, tt } from '../../helpers/cli-sync.js';

const tmp = mkdtempSync(join(tmpdir(), 'tt-file-errors-'));
const HEX = '0123456789abcdef0123456789abcdef01234567';
const LOOPBACK = ['--bind', '127.0.0.1', '--port', '0'];

beforeAll(ensureBuilt, 130_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('file errors in words, not errno codes', () => {
  it('tt create of a path that does not exist: exit 3, "no such file or directory"', () => {
    const missing = join(tmp, 'nonexist');
    expect(expectOneLineError(tt(['create', missing, '-o', join(tmp, 'x.torrent')]), 3)).toBe(`tt: cannot read ${missing}: no such file or directory`);
  });

  it('tt create of an unreadable folder: "permission denied"', () => {
    if (process.getuid?.() === 0) return; // root reads anything
    const locked = join(tmp, 'locked');
    mkdirSync(join(locked, 'inner'), { recursive: true });
    writeFileSync(join(locked, 'inner', 'f'), 'x');
    spawnSync('chmod', ['000', join(locked, 'inner')]);
    try {
      expect(expectOneLineError(tt(['create', locked, '-o', join(tmp, 'l.torrent')]), 3)).toBe(`tt: cannot read ${join(locked, 'inner')}: permission denied`);
    } finally {
      spawnSync('chmod', ['755', join(locked, 'inner')]);
    }
  });

  it('--save-torrent into a folder that does not exist: exit 2 before anything is fetched, nothing created', () => {
    const save = join(tmp, 'missingdir', 'x.torrent');
    const r = tt(['download', `magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1:1`, '--out', join(tmp, 'never'), ...LOOPBACK, '--peer-timeout', '2s', '--save-torrent', save]);
    expect(expectOneLineError(r, 2)).toBe(`tt: --save-torrent ${save}: folder ${join(tmp, 'missingdir')} does not exist (create it first; nothing downloaded)`);
    expect(existsSync(join(tmp, 'missingdir'))).toBe(false);
  });

  it('--save-torrent under a file: exit 2, the file is not a folder', () => {
    const file = join(tmp, 'plain-file');
    writeFileSync(file, 'x');
    const r = tt(['download', `magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1:1`, '--out', join(tmp, 'never'), ...LOOPBACK, '--peer-timeout', '2s', '--save-torrent', join(file, 'x.torrent')]);
    expect(expectOneLineError(r, 2)).toContain(`${file} is not a folder`);
  });
});

describe('tt create -o - onto a full disk', () => {
  it('exit 6 and the one line about standard output; nothing says "Created"', () => {
    const data = join(tmp, 'data.bin');
    writeFileSync(data, Buffer.alloc(100_000, 7));
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/tt.js'), 'create', data, '-o', '-'], { cwd: tmp, timeout: 20_000, stdio: ['ignore', full, 'pipe'] });
      expect(r.stderr.toString('utf8')).toBe('tt: cannot write to standard output: ENOSPC (no space left on device)\n');
      expect(r.status).toBe(6);
    } finally {
      closeSync(full);
    }
  });
});
