import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PieceHasher, hashPiecesHere } from '../../../src/storage/hasher.js';

const sha1 = (b: Uint8Array): Buffer => createHash('sha1').update(b).digest();
const hashers: PieceHasher[] = [];
const make = (workers: number): PieceHasher => {
  const h = new PieceHasher(workers);
  hashers.push(h);
  return h;
};
afterEach(async () => {
  await Promise.all(hashers.splice(0).map((h) => h.close()));
});

describe('PieceHasher', () => {
  for (const workers of [0, 1, 3]) {
    it(`agrees with crypto sha1 (${workers} workers), many at once, odd sizes`, async () => {
      const h = make(workers);
      const inputs = [0, 1, 16383, 16384, 262144, 1000001].map((n) => randomBytes(n));
      const got = await Promise.all(inputs.map((b) => h.hash(b)));
      got.forEach((g, i) => expect(g.equals(sha1(inputs[i]!))).toBe(true));
    });
  }

  it('hashes a small subarray of a large buffer and leaves the caller data intact', async () => {
    const h = make(1);
    const big = randomBytes(8 * 1024 * 1024);
    const piece = big.subarray(1_000_000, 1_000_000 + 65536);
    const before = Buffer.from(piece);
    expect((await h.hash(piece)).equals(sha1(before))).toBe(true);
    expect(piece.equals(before)).toBe(true);
    expect(big.length).toBe(8 * 1024 * 1024); // not detached by a transfer
  });

  it('hashes consecutive pieces of a shared buffer in place, honouring skip', async () => {
    const h = make(2);
    const view = Buffer.from(new SharedArrayBuffer(10_000));
    randomBytes(10_000).copy(view);
    const skip = new Uint8Array([0, 1, 0]);
    const got = await h.hashPieces(view.subarray(0, 9_000), 4_000, skip);
    expect(got.subarray(0, 20).equals(sha1(view.subarray(0, 4000)))).toBe(true);
    expect(got.subarray(20, 40).equals(Buffer.alloc(20))).toBe(true);
    expect(got.subarray(40, 60).equals(sha1(view.subarray(8000, 9000)))).toBe(true);
    expect(hashPiecesHere(view.subarray(0, 9_000), 4_000, skip).equals(got)).toBe(true);
  });

  it('fails pending and later hashes after close', async () => {
    const h = make(1);
    const pending = expect(h.hash(randomBytes(16 * 1024 * 1024))).rejects.toThrow(/closed/);
    await h.close();
    await pending;
    await expect(h.hash(Buffer.from('x'))).rejects.toThrow(/closed/);
  });

  it('does not keep the process alive, even when close() is forgotten', async () => {
    const started = Date.now();
    const r = await runWithHasher(
      `const h = new PieceHasher(2);
       console.log((await h.hash(Buffer.from('abc'))).toString('hex'));`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(r.status).toBe(0); // exited by itself, not killed by the timeout
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('close() while answers are on their way settles, in a process with nothing else to keep it alive', async () => {
    // The answers reach the main thread after close() has begun terminating
    // the workers. Once, handling such an answer unref'd its worker: Node then
    // ended with close() never settled (exit 13 here for the pending
    // top-level await; exit 0 and silence for `tt verify` stopped by SIGTERM).
    const r = await runWithHasher(
      `for (let round = 0; round < 20; round++) {
         const h = new PieceHasher(2);
         await Promise.all([h.hash(Buffer.from('a')), h.hash(Buffer.from('b'))]); // both workers up
         const view = new Uint8Array(new SharedArrayBuffer(1 << 20));
         const outcomes = [0, 1].map(() => h.hashPieces(view, 1 << 16).then(() => 'resolved', (e) => e.message));
         const until = Date.now() + 50;
         while (Date.now() < until); // the workers answer meanwhile; the answers wait for this thread
         await h.close();
         const got = await Promise.all(outcomes);
         if (got.some((g) => g !== 'hasher closed')) throw new Error('round ' + round + ': ' + got);
       }
       console.log('all closed');`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('all closed');
    expect(r.status).toBe(0);
  });
});

/** Runs `body` as an ES module in a fresh node, with PieceHasher imported (hasher.ts as plain JS: it imports only node: builtins). */
async function runWithHasher(body: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const source = await readFile(path.resolve(here, '../../../src/storage/hasher.ts'), 'utf8');
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  const dir = await mkdtemp(path.join(tmpdir(), 'tt-hasher-'));
  try {
    await writeFile(path.join(dir, 'hasher.mjs'), js);
    await writeFile(path.join(dir, 'main.mjs'), `import { PieceHasher } from './hasher.mjs';\n${body}\n`);
    const r = spawnSync(process.execPath, [path.join(dir, 'main.mjs')], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
