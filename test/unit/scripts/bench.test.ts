/**
 * scripts/bench.mjs pure parts: size/flag parsing, medians, GNU time output, and the
 * markdown table, which must show failed and missing clients instead of dropping them.
 */
import { describe, expect, it } from 'vitest';
import { median, parseArgs, parseGnuTime, parseSize, runOrder, summaryTable } from '../../../scripts/bench.mjs';

describe('parseSize', () => {
  it('reads binary and decimal units', () => {
    expect(parseSize('1GiB')).toBe(2 ** 30);
    expect(parseSize('16MiB')).toBe(16 * 2 ** 20);
    expect(parseSize('256KiB')).toBe(256 * 1024);
    expect(parseSize('1.5MiB')).toBe(1.5 * 2 ** 20);
    expect(parseSize('1000')).toBe(1000);
    expect(parseSize('2MB')).toBe(2_000_000);
  });

  it('refuses nonsense', () => {
    for (const bad of ['', 'abc', '-1MiB', '0', '1XB']) expect(() => parseSize(bad)).toThrow(/bad size/);
  });
});

describe('parseArgs', () => {
  it('has the documented defaults', () => {
    const o = parseArgs([]);
    expect(o).toMatchObject({ size: 2 ** 30, runs: 3, seeders: 1, pieceLength: 256 * 1024, direction: 'both', clients: ['tt', 'aria2c', 'libtorrent'] });
    expect(o.timeoutS).toBeGreaterThan(60);
  });

  it('reads every flag, with or without =', () => {
    const o = parseArgs(['--size', '8MiB', '--runs=1', '--piece-length', '64KiB', '--direction', 'seed', '--clients=tt,libtorrent', '--timeout', '30', '--seeders=8']);
    expect(o).toMatchObject({ size: 8 * 2 ** 20, runs: 1, pieceLength: 65536, direction: 'seed', clients: ['tt', 'libtorrent'], timeoutS: 30, seeders: 8 });
  });

  it('refuses unknown clients, directions and flags', () => {
    expect(() => parseArgs(['--clients', 'tt,utorrent'])).toThrow(/unknown client utorrent/);
    expect(() => parseArgs(['--direction', 'up'])).toThrow(/--direction/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown option/);
    expect(() => parseArgs(['--runs', '0'])).toThrow(/--runs/);
    expect(() => parseArgs(['--seeders', '0'])).toThrow(/--seeders/);
    expect(() => parseArgs(['--seeders', 'many'])).toThrow(/--seeders/);
  });
});

describe('median and GNU time', () => {
  it('takes the middle value (mean of the two middles when even)', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });

  it("parses '%e %U %S %M' even after a child's own stderr lines", () => {
    expect(parseGnuTime('some warning\n2.50 1.25 0.25 204800\n')).toEqual({ wallS: 2.5, cpuS: 1.5, maxRssMiB: 200 });
    expect(parseGnuTime('Command exited with non-zero status 1\n')).toBeUndefined();
  });
});

describe('runOrder', () => {
  it('puts each client first once and lets each follow different clients', () => {
    const clients = ['tt', 'aria2c', 'libtorrent'];
    const runs = [0, 1, 2].map((k) => runOrder(clients, k));
    expect(runs).toEqual([
      ['tt', 'aria2c', 'libtorrent'],
      ['aria2c', 'tt', 'libtorrent'],
      ['libtorrent', 'tt', 'aria2c'],
    ]);
    // who runs right before tt: nobody, aria2c, libtorrent (a rotation would give libtorrent twice)
    expect(runs.map((order) => order[order.indexOf('tt') - 1])).toEqual([undefined, 'aria2c', 'libtorrent']);
    expect(runOrder(clients, 3)).toEqual(clients);
    expect(clients).toEqual(['tt', 'aria2c', 'libtorrent']); // not modified
    expect(runOrder([], 4)).toEqual([]);
  });
});

describe('summaryTable', () => {
  it('prints a row per client, with failures and missing clients spelled out', () => {
    const table = summaryTable(
      [
        { client: 'tt', label: 'tt', run: 1, ok: true, wallS: 2, mibPerS: 8, cpuS: 1, maxRssMiB: 100 },
        { client: 'tt', label: 'tt', run: 2, ok: true, wallS: 4, mibPerS: 4, cpuS: 2, maxRssMiB: 120 },
        { client: 'aria2c', label: 'aria2c', run: 1, ok: false, error: 'bytes differ from the source' },
      ],
      ['tt', 'aria2c', 'libtorrent'],
      'leecher',
    );
    const rows = table.split('\n');
    expect(rows).toHaveLength(5);
    expect(rows[2]).toMatch(/^\| tt \| ok 2\/2 \| 3\.00 \[2\.00-4\.00\] \| 6\.0 \[4\.0-8\.0\] \|.*\| yes \|$/);
    expect(rows[3]).toMatch(/^\| aria2c \| FAILED 1\/1: bytes differ from the source \| n\/a .*\| no \|$/);
    expect(rows[4]).toMatch(/^\| libtorrent \| NOT RUN \|/);
  });
});
