/**
 * The dependency direction of ARCHITECTURE.md, checked on every import in src/:
 * core <- metainfo <- {wire, tracker, pieces, storage, dht} <- peer <- session <- cli,
 * and only src/cli/ talks to the terminal (process.exit, process.argv, console)
 * or imports the terminal packages (commander, cli-progress).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

const LEAVES = ['wire', 'tracker', 'pieces', 'storage', 'dht', 'webseed'] as const;
/** Which src/ folders each folder may import from (itself always included). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  metainfo: ['core'],
  ...Object.fromEntries(LEAVES.map((leaf) => [leaf, ['core', 'metainfo']])),
  peer: ['core', 'metainfo', ...LEAVES],
  session: ['core', 'metainfo', ...LEAVES, 'peer'],
  cli: ['core', 'metainfo', ...LEAVES, 'peer', 'session'],
};
const TERMINAL_PACKAGES = new Set(['commander', 'cli-progress']);

interface Finding {
  readonly line: number;
  readonly what: string;
}

/** Every module specifier of a file: static imports and re-exports, import(), import x = require(). */
function importSpecifiers(source: ts.SourceFile): Array<{ spec: string; line: number }> {
  const out: Array<{ spec: string; line: number }> = [];
  const lineOf = (n: ts.Node): number => source.getLineAndCharacterOfPosition(n.getStart(source)).line + 1;
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ spec: node.moduleSpecifier.text, line: lineOf(node) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      out.push({ spec: arg && ts.isStringLiteralLike(arg) ? arg.text : '<computed import()>', line: lineOf(node) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      out.push({ spec: ts.isStringLiteral(e) ? e.text : '<computed require>', line: lineOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Uses of process.exit, process.argv (also process['exit'] and destructuring) and console. */
function terminalUses(source: ts.SourceFile): Finding[] {
  const out: Finding[] = [];
  const lineOf = (n: ts.Node): number => source.getLineAndCharacterOfPosition(n.getStart(source)).line + 1;
  const isProcess = (e: ts.Node): boolean => ts.isIdentifier(e) && e.text === 'process';
  const banned = (name: string): boolean => name === 'exit' || name === 'argv';
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && isProcess(node.expression) && banned(node.name.text)) {
      out.push({ line: lineOf(node), what: `process.${node.name.text}` });
    } else if (ts.isElementAccessExpression(node) && isProcess(node.expression) && ts.isStringLiteralLike(node.argumentExpression) && banned(node.argumentExpression.text)) {
      out.push({ line: lineOf(node), what: `process['${node.argumentExpression.text}']` });
    } else if (ts.isVariableDeclaration(node) && ts.isObjectBindingPattern(node.name) && node.initializer && isProcess(node.initializer)) {
      for (const el of node.name.elements) {
        const key = el.propertyName ?? el.name;
        if (ts.isIdentifier(key) && banned(key.text)) out.push({ line: lineOf(node), what: `{ ${key.text} } = process` });
      }
    } else if (ts.isIdentifier(node) && node.text === 'console') {
      const p = node.parent;
      const isMemberName = (ts.isPropertyAccessExpression(p) && p.name === node) || (ts.isPropertyAssignment(p) && p.name === node);
      if (!isMemberName) out.push({ line: lineOf(node), what: 'console' });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The src/ folder a file belongs to ('' for src/ itself, '..' for outside). */
function layerOf(file: string): string {
  const rel = relative(SRC, file);
  if (rel.startsWith('..')) return '..';
  const parts = rel.split(sep);
  return parts.length > 1 ? parts[0]! : '';
}

/** Violations of the dependency direction in one file (path inside src/ for messages). */
function directionViolations(file: string, source: ts.SourceFile): string[] {
  const from = layerOf(file);
  const allowed = ALLOWED[from];
  const where = relative(SRC, file);
  if (!allowed) return [`${where}: folder '${from}' is not in the layer list`];
  const out: string[] = [];
  for (const { spec, line } of importSpecifiers(source)) {
    if (spec.startsWith('.')) {
      const to = layerOf(resolve(dirname(file), spec));
      if (to !== from && !allowed.includes(to)) out.push(`${where}:${line} (${from}) imports '${spec}' (${to === '..' ? 'outside src' : to})`);
    } else if (spec.startsWith('<')) {
      out.push(`${where}:${line} has a ${spec.slice(1, -1)}`);
    } else if (from !== 'cli' && TERMINAL_PACKAGES.has(spec)) {
      out.push(`${where}:${line} (${from}) imports the terminal package '${spec}'`);
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.isFile() && e.name.endsWith('.ts') ? [p] : [];
  });
}

function parse(file: string, text = readFileSync(file, 'utf8')): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

const FILES = sourceFiles(SRC);

describe('architecture', () => {
  it('finds the source tree', () => {
    expect(FILES.length).toBeGreaterThan(20);
    const layers = new Set(FILES.map(layerOf));
    for (const layer of Object.keys(ALLOWED)) expect(layers.has(layer), layer).toBe(true);
  });

  it('every import follows core <- metainfo <- {wire, tracker, pieces, storage, dht} <- peer <- session <- cli', () => {
    const violations = FILES.flatMap((f) => directionViolations(f, parse(f)));
    expect(violations).toEqual([]);
  });

  it('only src/cli/ uses process.exit, process.argv or console', () => {
    const violations = FILES.filter((f) => layerOf(f) !== 'cli').flatMap((f) =>
      terminalUses(parse(f)).map((u) => `${relative(SRC, f)}:${u.line} uses ${u.what}`),
    );
    expect(violations).toEqual([]);
  });

  describe('the scanner itself', () => {
    const fake = (folder: string, text: string): string[] => {
      const file = join(SRC, folder, 'fake.ts');
      return directionViolations(file, parse(file, text));
    };

    it('flags imports against the direction, in every syntax', () => {
      expect(fake('core', "import { x } from '../metainfo/a.js';")).toHaveLength(1);
      expect(fake('core', "import type { X } from '../wire/a.js';")).toHaveLength(1);
      expect(fake('metainfo', "export * from '../tracker/a.js';")).toHaveLength(1);
      expect(fake('wire', "const m = await import('../storage/a.js');")).toHaveLength(1);
      expect(fake('storage', "import x = require('../pieces/a.js');")).toHaveLength(1);
      expect(fake('peer', "import '../session/a.js';")).toHaveLength(1);
      expect(fake('session', "import { run } from '../cli/main.js';")).toHaveLength(1);
      expect(fake('core', "import { a } from '../../test/helpers/x.js';")[0]).toContain('outside src');
      expect(fake('peer', "import { Command } from 'commander';")).toHaveLength(1);
      expect(fake('wire', 'const m = await import(name);')).toHaveLength(1);
    });

    it('allows imports along the direction and within a folder', () => {
      expect(fake('core', "import { x } from './bitfield.js'; import { y } from 'node:crypto';")).toEqual([]);
      expect(fake('tracker', "import { a } from '../core/a.js'; import { b } from '../metainfo/b.js';")).toEqual([]);
      expect(fake('peer', "import { a } from '../wire/a.js'; import { b } from '../storage/b.js';")).toEqual([]);
      expect(fake('session', "import { a } from '../peer/a.js'; import { b } from '../tracker/b.js';")).toEqual([]);
      expect(fake('cli', "import { a } from '../session/a.js'; import { Command } from 'commander';")).toEqual([]);
    });

    it('finds terminal use but not look-alikes', () => {
      const uses = (text: string): string[] => terminalUses(parse('x.ts', text)).map((u) => u.what);
      expect(uses('process.exit(1);')).toEqual(['process.exit']);
      expect(uses("const a = process['argv'];")).toEqual(["process['argv']"]);
      expect(uses('const { argv, env } = process;')).toEqual(['{ argv } = process']);
      expect(uses("console.error('x');")).toEqual(['console']);
      expect(uses('const log = console;')).toEqual(['console']);
      expect(uses("// console.log('x') in a comment\nconst s = 'process.exit';\nprocess.exitCode = 1;\nprocess.env.X;\nobj.console = 1;")).toEqual([]);
    });
  });
});
