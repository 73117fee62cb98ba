/**
 * scripts/deps-stale.mjs: when test.sh must run `npm ci` (node_modules missing or not what
 * package-lock.json pins). Optional platform packages may be absent.
 */
import { describe, expect, it } from 'vitest';
import { staleReason } from '../../../scripts/deps-stale.mjs';

const lock = {
  packages: {
    '': { name: 'tt' },
    'node_modules/a': { version: '1.0.0' },
    'node_modules/opt': { version: '2.0.0', optional: true },
  },
};

describe('staleReason', () => {
  it('is fresh when every required package is installed at the locked version', () => {
    expect(staleReason(lock, { packages: { 'node_modules/a': { version: '1.0.0' } } })).toBeUndefined();
  });

  it('is stale when node_modules was never installed', () => {
    expect(staleReason(lock, undefined)).toMatch(/missing/);
  });

  it('is stale when a package is missing, has another version, or is extra', () => {
    expect(staleReason(lock, { packages: {} })).toMatch(/node_modules\/a is not installed/);
    expect(staleReason(lock, { packages: { 'node_modules/a': { version: '1.0.1' } } })).toMatch(/lock wants 1\.0\.0/);
    expect(
      staleReason(lock, { packages: { 'node_modules/a': { version: '1.0.0' }, 'node_modules/b': { version: '1.0.0' } } }),
    ).toMatch(/b is installed but not in package-lock/);
  });
});
