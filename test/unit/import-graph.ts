// The project's own import graph, as TypeScript reads and resolves it (type-only imports included), for the tests
// of what imports what (import-cycles.test.ts) and of what each build compiles (build-layout.test.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

export const ROOT = path.resolve(__dirname, '..', '..');

/** A project path, relative to the root and `/`-separated. */
export const rel = (file: string) => path.relative(ROOT, file).split(path.sep).join('/');

export interface ProjectConfig {
  /** The files the config includes (absolute). */
  fileNames: string[];
  options: ts.CompilerOptions;
}

export function readConfig(config = 'tsconfig.json'): ProjectConfig {
  const file = path.join(ROOT, config);
  const read = ts.readConfigFile(file, (f) => ts.sys.readFile(f));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, file);
  if (parsed.errors.length > 0)
    throw new Error(ts.formatDiagnostics(parsed.errors, ts.createCompilerHost({})));
  return { fileNames: parsed.fileNames, options: parsed.options };
}

/**
 * File → the project files it imports (import, export ... from, import(), require()), for `files` and every
 * project file they reach; libraries (node_modules) are left out. Keys and values are {@link rel} paths.
 */
export function importGraph(files: string[], options: ts.CompilerOptions): Map<string, string[]> {
  const cache = ts.createModuleResolutionCache(ROOT, (f) => f, options);
  const graph = new Map<string, string[]>();
  const queue = files.filter((f) => !f.endsWith('.d.ts'));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (graph.has(rel(file))) continue;
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const deps = new Set<string>();
    for (const { fileName } of importedFiles) {
      const resolved = ts.resolveModuleName(fileName, file, options, ts.sys, cache).resolvedModule;
      if (!resolved || resolved.isExternalLibraryImport || resolved.resolvedFileName.includes('node_modules'))
        continue;
      if (resolved.resolvedFileName.endsWith('.d.ts')) continue;
      deps.add(rel(resolved.resolvedFileName));
      queue.push(resolved.resolvedFileName);
    }
    graph.set(rel(file), [...deps].sort());
  }
  return graph;
}
