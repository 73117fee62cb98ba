import { describe, expect, it } from 'vitest';
import { formatDuration, formatRate, humanBytes, sanitizeForTerminal, terminalSafeJsonText } from '../../../src/cli/format.js';

describe('humanBytes / formatRate', () => {
  it('uses binary units with two decimals', () => {
    expect(humanBytes(0)).toBe('0 B');
    expect(humanBytes(1023)).toBe('1023 B');
    expect(humanBytes(1024)).toBe('1.00 KiB');
    expect(humanBytes(1536)).toBe('1.50 KiB');
    expect(humanBytes(1.5 * 1024 ** 3)).toBe('1.50 GiB');
    expect(humanBytes(1024 ** 2 - 1)).toBe('1.00 MiB');
    expect(humanBytes(Number.MAX_SAFE_INTEGER)).toBe('8.00 PiB');
    expect(humanBytes(-1)).toBe('? B');
    expect(humanBytes(Number.NaN)).toBe('? B');
  });

  it('formats rates, treating nonsense as zero', () => {
    expect(formatRate(3 * 1024 * 1024)).toBe('3.00 MiB/s');
    expect(formatRate(Number.POSITIVE_INFINITY)).toBe('0 B/s');
    expect(formatRate(-5)).toBe('0 B/s');
  });
});

describe('formatDuration', () => {
  it('picks the two most useful units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(0.04)).toBe('0s');
    expect(formatDuration(0.34)).toBe('0.3s');
    expect(formatDuration(1.85)).toBe('1.9s');
    expect(formatDuration(9.94)).toBe('9.9s');
    expect(formatDuration(9.96)).toBe('10s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(2 * 3600 + 3 * 60 + 59)).toBe('2h 03m');
    expect(formatDuration(4 * 86_400 + 7 * 3600)).toBe('4d 07h');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('∞');
    expect(formatDuration(Number.NaN)).toBe('∞');
  });
});

describe('sanitizeForTerminal', () => {
  it('neutralises escape sequences, C0/C1 controls and bidi overrides', () => {
    const evil = 'a\x1b[31mred\x1b]0;title\x07b\u009b2Jc\u202eexe.txt\r\n\x00\x7f\u2066\u200f';
    const out = sanitizeForTerminal(evil);
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]/);
    expect(out).toBe('a\ufffd[31mred\ufffd]0;title\ufffdb\ufffd2Jc\ufffdexe.txt\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd');
  });

  it('keeps ordinary Unicode untouched', () => {
    expect(sanitizeForTerminal('Café 日本語 🎵 ok')).toBe('Café 日本語 🎵 ok');
  });
});

describe('terminalSafeJsonText (JSON events, --json outputs)', () => {
  it('escapes DEL, C1 and bidi characters JSON.stringify leaves raw; the JSON still parses to the same value', () => {
    const value = { name: 'evil\u202eexe.txt\u009b2J\u007f\u2066x\u2028', n: 1 };
    const text = terminalSafeJsonText(JSON.stringify(value));
    expect(text).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028]/);
    expect(text).toContain('\\u202e');
    expect(JSON.parse(text)).toEqual(value);
  });
});
