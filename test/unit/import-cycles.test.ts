// No import cycles between the project's modules, type-only imports included (as madge counts them: a type cycle
// is still two modules that cannot be understood one without the other). TypeScript itself reads each file's
// imports and resolves them with the project's compiler options; only the walk over the graph is ours. eslint's
// import-x/no-cycle skips `import type`, and every cycle this project had was one of those.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { importGraph, readConfig, ROOT } from './import-graph';

const FOLDERS = [
  'workflows',
  'activities',
  'connection',
  'worker',
  'client',
  'demo',
  'scripts',
  'harness',
  'test',
];

/**
 * Cycles that existed when this test came, each as its sorted files, with who removes it. A cycle listed here that
 * no longer exists fails the third test, so the list only shrinks.
 */
const KNOWN_CYCLES: string[][] = [];

/** Every source file of these folders, with what it imports. */
function projectGraph(): Map<string, string[]> {
  const files = FOLDERS.flatMap((folder) =>
    fs
      .readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      .map((f) => path.join(ROOT, folder, f)),
  );
  return importGraph(files, readConfig('tsconfig.json').options);
}

/** The strongly connected components with more than one file (or a file importing itself): Tarjan's algorithm. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found.sort();
}

/** One way round a component, for the failure message: `a.ts > b.ts > a.ts`. */
function loopThrough(graph: Map<string, string[]>, component: string[]): string {
  const inside = new Set(component);
  const start = component[0];
  const pathTo = new Map<string, string[]>([[start, [start]]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (w === start) return [...pathTo.get(v)!, start].join(' > ');
      if (inside.has(w) && !pathTo.has(w)) {
        pathTo.set(w, [...pathTo.get(v)!, w]);
        queue.push(w);
      }
    }
  }
  return component.join(', ');
}

describe('import cycles', () => {
  const graph = projectGraph();
  const found = cycles(graph);
  const key = (c: string[]) => c.join(', ');
  const known = new Set(KNOWN_CYCLES.map(key));

  it('reads the whole project', () => {
    expect(graph.size).toBeGreaterThan(150);
    // Resolution works, and type-only imports count (activities/types.ts has only those).
    expect(graph.get('workflows/index.ts')).toContain('workflows/rollout.ts');
    expect(graph.get('activities/types.ts')).toContain('workflows/alerts/events.ts');
  });

  it('finds no cycle but the known ones', () => {
    const fresh = found.filter((c) => !known.has(key(c))).map((c) => loopThrough(graph, c));
    expect(fresh).toEqual([]);
  });

  it('still finds each known cycle (remove it from KNOWN_CYCLES once it is gone)', () => {
    const now = new Set(found.map(key));
    expect(KNOWN_CYCLES.map(key).filter((c) => !now.has(c))).toEqual([]);
  });

  it('finds every cycle of a small graph, and a way round it', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts', 'd.ts']],
    ]);
    expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts'], ['d.ts']]);
    expect(loopThrough(g, ['a.ts', 'b.ts', 'c.ts'])).toBe('a.ts > b.ts > c.ts > a.ts');
  });
});
