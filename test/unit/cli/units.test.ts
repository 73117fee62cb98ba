import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseBindAddress, parseCount, parseDuration, parsePeer, parsePort, parseRatio, parseSize } from '../../../src/cli/units.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseSize (sizes and rates, binary multiples)', () => {
  it.each([
    ['1048576', 1_048_576],
    ['0', 0],
    ['500K', 500 * KiB],
    ['500k', 500 * KiB],
    ['500KiB', 500 * KiB],
    ['500kb', 500 * KiB],
    ['10M', 10 * MiB],
    ['10MiB/s', 10 * MiB],
    ['512k/s', 512 * KiB],
    ['1.5G', 1.5 * GiB],
    ['2T', 2 * 1024 ** 4],
    [' 10 M ', 10 * MiB],
    ['0.1K', 102], // whole bytes, rounded down
    ['100B', 100],
  ])('%j -> %d', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'garbage', 'K', '-1', '1X', '1.5.5', '1e3', '10 MB/m', '1MiBs', '0x10', '99999999999T'])('%j is a usage error', (text) => {
    expect(() => parseSize(text)).toThrow(InvalidArgumentError);
  });
});

describe('parseDuration (seconds)', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['10m', 600],
    ['1h30m', 5400],
    ['1h30m15s', 5415],
    ['2d', 172_800],
    ['1.5h', 5400],
    ['0.5', 0.5],
    [' 45s ', 45],
  ])('%j -> %d s', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['abc', '1x', '', 's', '1h 30m', '1h-30m', '-5s', '5 s', 'h1'])('%j is a usage error', (text) => {
    expect(() => parseDuration(text)).toThrow(InvalidArgumentError);
  });
});

describe('parsePeer (host:port, repeatable)', () => {
  it('parses IPv4, hostnames and bracketed IPv6', () => {
    expect(parsePeer('127.0.0.1:6881')).toEqual([{ host: '127.0.0.1', port: 6881 }]);
    expect(parsePeer('localhost:1')).toEqual([{ host: 'localhost', port: 1 }]);
    expect(parsePeer('[::1]:65535')).toEqual([{ host: '::1', port: 65535 }]);
    expect(parsePeer('[2001:db8::1]:6881')).toEqual([{ host: '2001:db8::1', port: 6881 }]);
  });

  it('appends to the earlier values of a repeated option', () => {
    const first = parsePeer('127.0.0.1:1');
    const both = parsePeer('[::1]:2', first);
    expect(both).toEqual([
      { host: '127.0.0.1', port: 1 },
      { host: '::1', port: 2 },
    ]);
    expect(first).toHaveLength(1); // the earlier array is not mutated
  });

  it.each([
    '127.0.0.1',
    '127.0.0.1:',
    ':6881',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:abc',
    '127.0.0.1:-1',
    '::1:6881', // IPv6 needs brackets
    '[::1]',
    '[::1]:0',
    '[hostname]:80',
    '',
  ])('%j is a usage error', (text) => {
    expect(() => parsePeer(text)).toThrow(InvalidArgumentError);
  });
});

describe('parsePort', () => {
  it('accepts 0..65535 (0 = any free port)', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('6881')).toBe(6881);
    expect(parsePort('65535')).toBe(65535);
  });

  it.each(['65536', '-1', '1.5', 'abc', '100000'])('%j is a usage error', (text) => {
    expect(() => parsePort(text)).toThrow(InvalidArgumentError);
  });

  // Fails today: parsePort uses Number(text), so '' and ' ' become port 0 (a
  // random port, silently) and hex/exponent forms are accepted.
  it.each(['', ' ', '0x50', '1e3'])('%j (not a decimal number) is a usage error', (text) => {
    expect(() => parsePort(text)).toThrow(InvalidArgumentError);
  });
});

describe('parseRatio and parseCount', () => {
  it('parseRatio accepts numbers >= 0', () => {
    expect(parseRatio('0')).toBe(0);
    expect(parseRatio('1.5')).toBe(1.5);
    for (const bad of ['-0.1', 'abc', 'Infinity', 'NaN']) expect(() => parseRatio(bad), bad).toThrow(InvalidArgumentError);
  });

  // Fails today: Number('') is 0, so an empty --seed-ratio means "stop at once".
  it.each(['', ' '])('parseRatio(%j) is a usage error', (text) => {
    expect(() => parseRatio(text)).toThrow(InvalidArgumentError);
  });

  it('parseCount accepts whole numbers 1..100000', () => {
    expect(parseCount('1')).toBe(1);
    expect(parseCount('100000')).toBe(100_000);
    for (const bad of ['0', '100001', '2.5', '', 'x']) expect(() => parseCount(bad), bad).toThrow(InvalidArgumentError);
  });
});

describe('parseBindAddress (--bind)', () => {
  it.each(['0.0.0.0', '127.0.0.1', '::1', '::', 'localhost'])('%j is kept as given', (text) => {
    expect(parseBindAddress(text)).toBe(text);
  });

  // Node listens on every interface for an empty host: `--bind "$ADDR"` with $ADDR unset must not
  it.each(['', ' ', '\t', '  \n'])('%j is a usage error naming the danger', (text) => {
    expect(() => parseBindAddress(text)).toThrow(InvalidArgumentError);
    expect(() => parseBindAddress(text)).toThrow(/every interface/);
  });
});
