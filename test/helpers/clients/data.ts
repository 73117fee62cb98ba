/**
 * Test data for interop tests: a multi-file payload whose files cross piece boundaries
 * (odd sizes, a zero-length file, a nested folder) and a byte-for-byte tree comparison.
 * Pure file-system helpers; no BitTorrent logic.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

/** Relative path -> length. Odd sizes so pieces of 16/32/64 KiB span file ends. */
export const MULTI_FILE_LAYOUT: Readonly<Record<string, number>> = {
  'a.bin': 100_003,
  'empty.txt': 0,
  'sub/b.bin': 65_537,
  'sub/deeper/c.bin': 7,
  'sub/d.bin': 250_001,
  'z.bin': 1,
};

/** Write random files under root/name/... ; returns the folder path. */
export async function writeMultiFileData(
  root: string,
  name: string,
  layout: Readonly<Record<string, number>> = MULTI_FILE_LAYOUT,
): Promise<string> {
  const base = join(root, name);
  for (const [rel, length] of Object.entries(layout)) {
    const path = join(base, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, randomBytes(length));
  }
  return base;
}

export async function sha1File(path: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every regular file under dir, as sorted relative paths with their sizes. */
export async function listTree(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) out.set(relative(dir, p), (await stat(p)).size);
    }
  };
  await walk(dir);
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Throw unless every file under `expected` exists under `actual` with identical bytes.
 * `allowMissingEmpty`: a zero-length file may be absent (Transmission 3.00 does not create them).
 * Extra files under `actual` (resume/control files) are ignored unless `strict`.
 */
export async function assertSameTree(
  expected: string,
  actual: string,
  opts: { allowMissingEmpty?: boolean; strict?: boolean } = {},
): Promise<void> {
  const want = await listTree(expected);
  const got = await listTree(actual).catch(() => new Map<string, number>());
  if (want.size === 0) throw new Error(`no files under ${expected}`);
  const problems: string[] = [];
  for (const [rel, size] of want) {
    const gotSize = got.get(rel);
    if (gotSize === undefined) {
      if (!(size === 0 && opts.allowMissingEmpty)) problems.push(`missing ${rel}`);
      continue;
    }
    if (gotSize !== size) problems.push(`${rel}: ${gotSize} bytes, want ${size}`);
    else if ((await sha1File(join(expected, rel))) !== (await sha1File(join(actual, rel)))) problems.push(`${rel}: bytes differ`);
  }
  if (opts.strict) for (const rel of got.keys()) if (!want.has(rel)) problems.push(`unexpected ${rel}`);
  if (problems.length > 0) throw new Error(`${actual} differs from ${expected}:\n  ${problems.join('\n  ')}`);
}
