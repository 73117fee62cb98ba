/**
 * scripts/test-summary.mjs: the closing line of `npm test` and its verdict, from vitest's
 * json report. A skipped test, a file that failed to load, or an empty run must not pass.
 */
import { describe, expect, it } from 'vitest';
import { summarize } from '../../../scripts/test-summary.mjs';

const file = (status: string, ...tests: string[]) => ({ status, assertionResults: tests.map((s) => ({ status: s })) });

describe('summarize', () => {
  it('counts passes and failures across files', () => {
    const s = summarize({ success: false, testResults: [file('passed', 'passed', 'passed'), file('failed', 'passed', 'failed')] });
    expect(s).toMatchObject({ passed: 3, failed: 1, skipped: 0, line: '3 passed, 1 failed', ok: false });
  });

  it('passes a clean run', () => {
    const s = summarize({ success: true, testResults: [file('passed', 'passed')] });
    expect(s.line).toBe('1 passed, 0 failed');
    expect(s.ok).toBe(true);
  });

  it('appends skipped and fails the run when anything was skipped or todo', () => {
    const s = summarize({ success: true, testResults: [file('passed', 'passed', 'skipped', 'pending', 'todo')] });
    expect(s.line).toBe('1 passed, 0 failed, 3 skipped');
    expect(s.ok).toBe(false);
  });

  it('counts a file that failed outside any test (import error) as a failure', () => {
    const s = summarize({ success: false, testResults: [file('failed'), file('passed', 'passed')] });
    expect(s.line).toBe('1 passed, 1 failed');
    expect(s.ok).toBe(false);
  });

  it('fails an empty run', () => {
    expect(summarize({ success: true, testResults: [] }).ok).toBe(false);
    expect(summarize({ success: false, testResults: [] }).line).toBe('0 passed, 1 failed');
    expect(summarize(undefined).ok).toBe(false);
  });
});
