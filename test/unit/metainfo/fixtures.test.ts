/**
 * Keeps fixtures/torrents/ in step with test/helpers/torrent-factory.ts.
 * Regenerate: TT_WRITE_FIXTURES=1 npx vitest run test/unit/metainfo/fixtures.test.ts
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { badFixtures, goodFixtures } from '../../helpers/torrent-factory.js';

const DIR = join(import.meta.dirname, '../../../fixtures/torrents');
const all = [...goodFixtures(), ...badFixtures()];

describe('fixtures/torrents', () => {
  if (process.env['TT_WRITE_FIXTURES'] === '1') {
    mkdirSync(DIR, { recursive: true });
    for (const f of all) writeFileSync(join(DIR, f.file), f.bytes);
  }

  it('has unique names and at least 20 hostile torrents', () => {
    expect(new Set(all.map((f) => f.file)).size).toBe(all.length);
    expect(badFixtures().length).toBeGreaterThanOrEqual(20);
  });

  it.each(all.map((f) => [f.file, f.bytes] as const))('%s on disk matches the factory', (file, bytes) => {
    expect(readFileSync(join(DIR, file)).equals(bytes)).toBe(true);
  });

  it('holds no stale files the factory no longer makes', () => {
    expect(readdirSync(DIR).sort()).toEqual(all.map((f) => f.file).sort());
  });
});
