// What ships: the production build (dist/, tsconfig.build.json) and the image (Dockerfile) hold the worker, the CLI
// and client library and the local stack, never the test harness, the scripts or the tests; those build to
// dist-dev/ (tsconfig.dev.json).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { importGraph, readConfig, rel, ROOT } from './import-graph';

const DEV_ONLY = ['harness/', 'scripts/', 'test/', 'demo/examples/'];

/** Every source file tsc compiles (and so emits) for a config: its includes and the project files they import. */
function compiledFiles(config: string): { files: string[]; outDir: string } {
  const { fileNames, options } = readConfig(config);
  return { files: [...importGraph(fileNames, options).keys()].sort(), outDir: rel(options.outDir ?? '') };
}

describe('the production build (tsconfig.build.json, dist/)', () => {
  const { files, outDir } = compiledFiles('tsconfig.build.json');

  it('compiles the product and the local stack into dist/, and nothing dev-only', () => {
    expect(outDir).toBe('dist');
    expect(files).toEqual(
      expect.arrayContaining([
        'worker/main.ts',
        'worker/bundle.ts',
        'client/cli.ts',
        'client/index.ts',
        'workflows/index.ts',
        'activities/rollout-activities.ts',
        // docker-compose.yml runs these two from the image.
        'demo/stack-main.ts',
        'demo/traffic-generator.ts',
      ]),
    );
    expect(files.filter((f) => DEV_ONLY.some((d) => f.startsWith(d)))).toEqual([]);
  });

  it('is what the Dockerfile copies in and ships: every folder tsc reads, none of the dev-only ones', () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const [build, runtime] = dockerfile.split(/^FROM /m).slice(1);
    const copied = [...build.matchAll(/^COPY (?!--)(.+) (\S+)$/gm)].flatMap((m) => m[1].split(' '));
    const folders = [...new Set(files.map((f) => f.split('/')[0]))];
    expect(copied).toEqual(expect.arrayContaining([...folders, 'tsconfig.json', 'tsconfig.build.json']));
    expect(copied.filter((c) => DEV_ONLY.some((d) => `${c}/`.startsWith(d)))).toEqual([]);
    expect(build).toMatch(/^RUN npm run build$/m);
    // The image itself gets the compiled dist/ and the production dependencies only.
    expect([...runtime.matchAll(/^COPY (.+)$/gm)].map((m) => m[1])).toEqual([
      'package.json package-lock.json ./',
      '--from=build /app/dist dist',
    ]);
  });

  it('npm run build starts from an empty dist/, so nothing an older build left ships', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts;
    expect(scripts.build).toMatch(/^rm -rf dist && tsc -p tsconfig\.build\.json && /);
  });

  it('left no dev-only folder in a built dist/', () => {
    const dist = path.join(ROOT, 'dist');
    if (!fs.existsSync(dist)) return; // not built: the build itself is checked above
    const stale = DEV_ONLY.filter((d) => fs.existsSync(path.join(dist, d)));
    if (stale.length > 0) {
      throw new Error(
        `dist/ holds ${stale.join(', ')} from an older build: run npm run build (it empties dist/)`,
      );
    }
  });
});

describe('the dev build (tsconfig.dev.json, dist-dev/)', () => {
  it('compiles the scripts, the whole demo and the harness into dist-dev/', () => {
    const { files, outDir } = compiledFiles('tsconfig.dev.json');
    expect(outDir).toBe('dist-dev');
    expect(files).toEqual(
      expect.arrayContaining([
        'scripts/demo.ts',
        'scripts/demo-example.ts',
        'scripts/bench.ts',
        'scripts/record-fixtures.ts',
        'harness/rollout-env.ts',
        'demo/examples/run.ts',
      ]),
    );
    expect(files.filter((f) => f.startsWith('test/'))).toEqual([]);
  });
});
