// One worker serving several clusters (worker/clusters.ts): CANARY_CLUSTERS read with every problem named, each
// cluster's providers on its own kubeconfig context, and a context missing from the kubeconfig refused at start-up
// (exit 2) naming it. No server is contacted: building a Kubernetes client reads only the kubeconfig.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { ConfigProblem } from '../../worker/config';
import {
  ClusterContextError,
  clusterProviders,
  describeClusters,
  loadClusterRegistry,
} from '../../worker/clusters';
import { main } from '../../worker/main';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-clusters-'));
const kubeconfig = path.join(dir, 'kubeconfig.json');
const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [
    { name: 'home', server: 'https://10.0.0.1:6443', skipTLSVerify: false },
    { name: 'eu', server: 'https://10.0.0.2:6443', skipTLSVerify: false },
  ],
  users: [
    { name: 'home-admin', token: 'a' },
    { name: 'eu-admin', token: 'b' },
  ],
  contexts: [
    { name: 'home-ctx', cluster: 'home', user: 'home-admin' },
    { name: 'arn:aws:eks:eu-west-1:1:cluster/eu', cluster: 'eu', user: 'eu-admin' },
  ],
  currentContext: 'home-ctx',
});
fs.writeFileSync(kubeconfig, kc.exportConfig());

const env = { CANARY_KUBECONFIG: kubeconfig, CANARY_ROUTER: 'istio', CANARY_WORKLOADS: 'kubernetes' };

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function read(value: string): { entries: ReturnType<typeof loadClusterRegistry>; problems: string[] } {
  const problems: ConfigProblem[] = [];
  const entries = loadClusterRegistry({ CANARY_CLUSTERS: value }, problems);
  return { entries, problems: problems.map((p) => `${p.variable}: ${p.problem}`) };
}

test('CANARY_CLUSTERS names clusters and their contexts; a context name runs to the end of its entry', () => {
  expect(read(' eu-west = arn:aws:eks:eu-west-1:1:cluster/eu ,\nus-east=us=1 ,')).toEqual({
    entries: [
      { cluster: 'eu-west', context: 'arn:aws:eks:eu-west-1:1:cluster/eu' },
      { cluster: 'us-east', context: 'us=1' },
    ],
    problems: [],
  });
  expect(loadClusterRegistry({}, [])).toEqual([]);
  expect(loadClusterRegistry({ CANARY_CLUSTERS: ' ' }, [])).toEqual([]);
});

test('every problem of CANARY_CLUSTERS at once', () => {
  expect(read('eu-west,EU=ctx,us-east=a,us-east=b,ap=').problems).toEqual([
    'CANARY_CLUSTERS: "eu-west" names no kubeconfig context: write cluster=context, e.g. eu-west=prod-eu-west',
    'CANARY_CLUSTERS: "EU" is not a cluster name (lowercase letters, digits and dashes, as release files name it)',
    'CANARY_CLUSTERS: cluster us-east is named twice',
    'CANARY_CLUSTERS: "ap=" names no kubeconfig context: write cluster=context, e.g. eu-west=prod-eu-west',
  ]);
});

test("each cluster's providers reach its own API server, through its context, on <queue>.<cluster>", () => {
  const clusters = clusterProviders(
    env,
    [
      { cluster: 'home', context: 'home-ctx' },
      { cluster: 'eu-west', context: 'arn:aws:eks:eu-west-1:1:cluster/eu' },
    ],
    'canary-rollouts',
  );
  expect(clusters.map((c) => [c.cluster, c.taskQueue, c.registry.kubeClients().server])).toEqual([
    ['home', 'canary-rollouts.home', 'https://10.0.0.1:6443'],
    ['eu-west', 'canary-rollouts.eu-west', 'https://10.0.0.2:6443'],
  ]);
  expect(describeClusters(clusters)).toBe(
    'home (context home-ctx) on canary-rollouts.home, eu-west (context arn:aws:eks:eu-west-1:1:cluster/eu) on canary-rollouts.eu-west',
  );
});

test('a context missing from the kubeconfig is named, with the contexts the file has', () => {
  const run = () => clusterProviders(env, [{ cluster: 'us-east', context: 'us' }], 'q');
  expect(run).toThrow(ClusterContextError);
  expect(run).toThrow(
    `CANARY_CLUSTERS: cluster us-east names kubeconfig context "us", which is not in kubeconfig ${kubeconfig} ` +
      '(its contexts: home-ctx, arn:aws:eks:eu-west-1:1:cluster/eu)',
  );
});

test('the worker refuses to start (exit 2) on a missing context, and on a bad CANARY_CLUSTERS', async () => {
  const errors: string[] = [];
  const spy = jest.spyOn(console, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
  try {
    const base = { ...env, CANARY_METRICS: 'local', TEMPORAL_ADDRESS: '127.0.0.1:1' };
    expect(await main({ ...base, CANARY_CLUSTERS: 'eu-west=nowhere' })).toBe(2);
    expect(errors.join('\n')).toContain(
      'cluster eu-west names kubeconfig context "nowhere", which is not in',
    );
    expect(await main({ ...base, CANARY_CLUSTERS: 'eu-west' })).toBe(2);
    expect(errors.join('\n')).toContain('"eu-west" names no kubeconfig context');
  } finally {
    spy.mockRestore();
  }
});
