// Runs the local stack as its own process (for the demo and for tests that want a separate process).
//   node dist/demo/stack-main.js --stable v1 --fault v2=0.08 --latency v2=40
// Prints one JSON line {"proxyUrl","controlUrl","stableVersion","pid"} on stdout once listening; stops on SIGTERM/SIGINT.
// Every flag has an environment fallback: CANARY_LOCAL_PROXY_PORT, CANARY_LOCAL_CONTROL_PORT,
// CANARY_LOCAL_STABLE_VERSION, CANARY_LOCAL_FAULTS ("v2=0.08,v3=0.5") and CANARY_LOCAL_LATENCY ("v2=40").
import { parseArgs } from 'node:util';
import { startLocalStack, type Fault, type LocalStackOptions } from './stack';

export const DEFAULT_PROXY_PORT = 7000;
export const DEFAULT_CONTROL_PORT = 7001;

const USAGE =
  'usage: stack-main [--proxy-port 7000] [--control-port 7001] [--stable v1] [--fault VERSION=ERROR_RATE]... [--latency VERSION=MS]...';

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name} must be a port number, got ${value}`);
  return n;
}

/** Reads `VERSION=NUMBER` pairs into faults[version][key]. */
function addFaults(faults: Record<string, Fault>, pairs: string[], key: keyof Fault, flag: string): void {
  for (const pair of pairs) {
    const m = /^([^=\s]+)=([0-9.]+)$/.exec(pair.trim());
    const value = m ? Number(m[2]) : NaN;
    const valid = key === 'errorRate' ? value >= 0 && value <= 1 : value >= 0;
    if (!m || !valid) {
      throw new Error(
        `${flag} takes VERSION=${key === 'errorRate' ? 'RATE (0..1)' : 'MS'}, got ${JSON.stringify(pair)}`,
      );
    }
    faults[m[1]] = { ...faults[m[1]], [key]: value };
  }
}

const list = (env: string | undefined) => (env ?? '').split(',').filter((s) => s.trim() !== '');

export function parseStackArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): LocalStackOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'proxy-port': { type: 'string' },
      'control-port': { type: 'string' },
      stable: { type: 'string' },
      fault: { type: 'string', multiple: true },
      latency: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const faults: Record<string, Fault> = {};
  addFaults(faults, [...list(env.CANARY_LOCAL_FAULTS), ...(values.fault ?? [])], 'errorRate', '--fault');
  addFaults(faults, [...list(env.CANARY_LOCAL_LATENCY), ...(values.latency ?? [])], 'latencyMs', '--latency');
  return {
    proxyPort: port(values['proxy-port'] ?? env.CANARY_LOCAL_PROXY_PORT, DEFAULT_PROXY_PORT, '--proxy-port'),
    controlPort: port(
      values['control-port'] ?? env.CANARY_LOCAL_CONTROL_PORT,
      DEFAULT_CONTROL_PORT,
      '--control-port',
    ),
    stableVersion: values.stable || env.CANARY_LOCAL_STABLE_VERSION || 'v1',
    faults,
  };
}

async function main(): Promise<void> {
  let options: LocalStackOptions;
  try {
    options = parseStackArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    process.exit(2);
  }
  const stack = await startLocalStack(options);
  process.stdout.write(
    JSON.stringify({
      proxyUrl: stack.proxyUrl,
      controlUrl: stack.controlUrl,
      stableVersion: options.stableVersion,
      pid: process.pid,
    }) + '\n',
  );
  const stop = () => {
    stack.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `local stack failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  });
}
