// The Helm chart in deploy/helm/temporal-canary: `helm lint`, then `helm template` with every option on, each object
// applied to a real kube-apiserver with a server-side dry run (dryRun=All) and its pods against the restricted Pod
// Security Standard; the roles are deploy/rbac.yaml's; the worker accepts the environment the chart gives it; and
// a required value left out fails the render with what to set.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Deployment,
  type V1Job,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { providerConfigFromEnv } from '../../activities/factory';
import { kubeClients, type KubeClients } from '../../activities/kube/client';
import { findHelm, HELM_BUILD_TIMEOUT_MS, runHelm } from '../../harness/helm';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { loadWorkerProcessConfig, providerDefaultProblems } from '../../worker/config';
import { SEARCH_ATTRIBUTES } from '../../workflows/api';

jest.setTimeout(180_000);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.resolve(__dirname, '..', '..');
const CHART = path.join(ROOT, 'deploy', 'helm', 'temporal-canary');
const RELEASE_NS = 'canary-system';
const REQUIRED = [
  '--set',
  'temporal.address=temporal-frontend.temporal.svc.cluster.local:7233',
  '--set',
  'prometheus.url=http://prometheus-operated.monitoring.svc.cluster.local:9090',
];

/**
 * Every option on: TLS and API key from Secrets, versioning, every sink, the Job, the ServiceMonitor, the
 * PrometheusRule and the dashboard.
 */
const FULL_VALUES = `
image: { repository: registry.example.com/temporal-canary, tag: 1.4.2 }
temporal:
  address: temporal.example.com:7233
  namespace: rollouts
  tls: { enabled: true, secretName: temporal-client-tls, clientCertificate: true, ca: true, serverName: temporal.example.com }
  apiKey: { secretName: temporal-api-key, key: api-key }
versioning: { deploymentName: canary-worker }
providers: { router: gatewayAPI, workloads: kubernetes, metrics: prometheus }
prometheus:
  url: http://prometheus-operated.monitoring.svc.cluster.local:9090
  bearerTokenSecret: { name: prometheus-token, key: token }
alerts:
  webhook: { secretName: canary-webhook }
  slack: { secretName: canary-slack }
  alertmanager: { url: http://alertmanager.monitoring:9093, secretName: canary-alertmanager }
  pagerduty: { secretName: canary-pagerduty }
  temporalUiUrl: https://temporal.example.com
identity:
  allowedSignersSecret: canary-allowed-signers
  oidc: { issuer: https://token.actions.githubusercontent.com, audience: temporal-canary, jwksSecret: canary-jwks }
  requireVerified: true
rollouts:
  namespaces:
    - { name: shop, routers: [istio, nginx], workloads: true, jobHooks: true }
    - { name: mesh, routers: [gatewayAPI, smi, replicas], workloads: true }
searchAttributesJob: { enabled: true }
serviceMonitor: { enabled: true, labels: { release: prometheus } }
prometheusRule: { enabled: true, labels: { release: prometheus } }
grafanaDashboard: { enabled: true }
extraEnv:
  - { name: CANARY_PROMETHEUS_TIMEOUT, value: 15s }
`;

let helm: string;
let kube: KubeServer;
let admin: KubeClients;
let objects: KubernetesObjectApi;
let dir: string;

// Helm is built into the cache on first use (scripts/helm.sh), so the first run may take minutes.
beforeAll(async () => {
  helm = await findHelm();
}, HELM_BUILD_TIMEOUT_MS);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-helm-'));
  kube = await startKubeServer({ crds: 'none' });
  const kc = kube.kubeConfig('admin');
  admin = kubeClients(kc);
  objects = KubernetesObjectApi.makeApiClient(kc);
  // The release's namespace enforces the restricted Pod Security Standard, as deploy/namespace.yaml does.
  await admin.core.createNamespace({
    body: {
      metadata: { name: RELEASE_NS, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    },
  });
  for (const ns of ['shop', 'mesh']) await kube.createNamespace(ns);
  for (const [file, name] of [
    ['servicemonitor.yaml', 'servicemonitors.monitoring.coreos.com'],
    ['prometheusrule.yaml', 'prometheusrules.monitoring.coreos.com'],
  ]) {
    const crd = parseAllDocuments(fs.readFileSync(path.join(ROOT, 'harness', 'crds', file), 'utf8'))
      .map((d) => d.toJS() as Obj)
      .filter(Boolean);
    for (const c of crd) await objects.create(c as KubernetesObject);
    await waitEstablished(name);
  }
}, 120_000);

afterAll(async () => {
  await kube?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function waitEstablished(name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const crd = (await objects.read({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
    })) as Obj;
    if ((crd.status?.conditions ?? []).some((c: Obj) => c.type === 'Established' && c.status === 'True'))
      break;
    if (Date.now() > deadline) throw new Error(`CRD ${name} not Established`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // The API server delays the first create of a custom object for 2 s after its CRD became Established.
  await new Promise((r) => setTimeout(r, 2_100));
}

function parse(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors[0].message);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

async function template(args: string[]): Promise<Obj[]> {
  const r = await runHelm(helm, ['template', 'temporal-canary', CHART, '--namespace', RELEASE_NS, ...args]);
  expect([r.code, r.stderr]).toEqual([0, '']);
  return parse(r.stdout);
}

function envOf(spec: V1PodSpec): Record<string, string> {
  return Object.fromEntries(
    (spec.containers[0].env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
}

/** Fields we wrote that the server dropped or changed (a pruned field, a typo'd key). */
function missingFields(live: unknown, wanted: unknown, at = ''): string[] {
  if (Array.isArray(wanted)) {
    if (!Array.isArray(live) || live.length !== wanted.length) return [at || '(root)'];
    return wanted.flatMap((w, i) => missingFields(live[i], w, `${at}[${i}]`));
  }
  if (wanted && typeof wanted === 'object') {
    if (!live || typeof live !== 'object') return [at || '(root)'];
    return Object.entries(wanted).flatMap(([k, w]) =>
      missingFields((live as Obj)[k], w, at ? `${at}.${k}` : k),
    );
  }
  return live === wanted ? [] : [`${at} (${JSON.stringify(live)} instead of ${JSON.stringify(wanted)})`];
}

test('helm lint passes with the required values', async () => {
  const r = await runHelm(helm, ['lint', CHART, '--strict', ...REQUIRED]);
  expect([r.code, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  const full = path.join(dir, 'full.yaml');
  fs.writeFileSync(full, FULL_VALUES);
  const r2 = await runHelm(helm, ['lint', CHART, '--strict', '-f', full]);
  expect([r2.code, r2.stdout.split('\n').pop(), r2.stderr]).toEqual([0, '', '']);
});

test('every object of a release with every option on is accepted by the API server (dry run)', async () => {
  const full = path.join(dir, 'full.yaml');
  fs.writeFileSync(full, FULL_VALUES);
  const docs = await template(['-f', full]);
  const kinds = docs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort();
  expect(kinds).toEqual(
    [
      ...['istio', 'nginx', 'gateway-api', 'smi', 'replicas', 'workloads', 'sweeper', 'hooks'].map(
        (r) => `ClusterRole//temporal-canary-${r}`,
      ),
      // The sweeper lists canaries wherever rollouts have a Deployment workload.
      ...['istio', 'nginx', 'workloads', 'sweeper', 'hooks'].map(
        (r) => `RoleBinding/shop/temporal-canary-${r}`,
      ),
      ...['gateway-api', 'smi', 'replicas', 'workloads', 'sweeper'].map(
        (r) => `RoleBinding/mesh/temporal-canary-${r}`,
      ),
      `ServiceAccount/${RELEASE_NS}/temporal-canary-worker`,
      `Deployment/${RELEASE_NS}/temporal-canary-worker`,
      `Job/${RELEASE_NS}/temporal-canary-search-attributes`,
      `Service/${RELEASE_NS}/temporal-canary-worker-metrics`,
      `ServiceMonitor/${RELEASE_NS}/temporal-canary-worker`,
      `PrometheusRule/${RELEASE_NS}/temporal-canary`,
      `ConfigMap/${RELEASE_NS}/temporal-canary-dashboard`,
    ].sort(),
  );
  // Cluster-scoped roles and the ServiceAccount first: the bindings and pods refer to them.
  const order = ['ClusterRole', 'ServiceAccount'];
  const sorted = [...docs].sort((a, b) => Number(!order.includes(a.kind)) - Number(!order.includes(b.kind)));
  for (const obj of sorted) {
    let created: Obj;
    try {
      created = (await objects.create(obj as KubernetesObject, undefined, 'All')) as Obj;
    } catch (err) {
      throw new Error(`${obj.kind} ${obj.metadata.name}: ${(err as Error).message}`);
    }
    expect([obj.kind, missingFields(JSON.parse(JSON.stringify(created)), obj)]).toEqual([obj.kind, []]);
  }
  // Their pods, as the kubelet would get them: the namespace's restricted Pod Security admits both.
  const deployment = docs.find((o) => o.kind === 'Deployment') as V1Deployment;
  const job = docs.find((o) => o.kind === 'Job') as V1Job;
  for (const [name, spec] of [
    ['worker', deployment.spec!.template.spec!],
    ['search-attributes', job.spec!.template.spec!],
  ] as const) {
    await admin.core.createNamespacedPod({
      namespace: RELEASE_NS,
      body: { metadata: { name }, spec },
      dryRun: 'All',
    });
  }

  const spec = deployment.spec!.template.spec!;
  expect(spec.containers[0].image).toBe('registry.example.com/temporal-canary:1.4.2');
  const env = envOf(spec);
  expect(env).toMatchObject({
    TEMPORAL_ADDRESS: 'temporal.example.com:7233',
    TEMPORAL_NAMESPACE: 'rollouts',
    TEMPORAL_TLS: 'true',
    TEMPORAL_TLS_CERT: '/etc/temporal-tls/tls.crt',
    TEMPORAL_TLS_KEY: '/etc/temporal-tls/tls.key',
    TEMPORAL_TLS_CA: '/etc/temporal-tls/ca.crt',
    TEMPORAL_DEPLOYMENT_NAME: 'canary-worker',
    TEMPORAL_WORKER_BUILD_ID: '1.4.2',
    CANARY_ROUTER: 'gatewayAPI',
    CANARY_ALERT_WEBHOOK_URL_FILE: '/etc/canary/alerts/webhook/url',
    CANARY_PAGERDUTY_ROUTING_KEY_FILE: '/etc/canary/alerts/pagerduty/routing-key',
    CANARY_PROMETHEUS_TIMEOUT: '15s',
    CANARY_METRICS_PORT: '9464',
    // Signed requests: keys from Secrets (re-read at every verification), the worker's demand.
    CANARY_ALLOWED_SIGNERS: '/etc/canary/identity/allowed_signers',
    CANARY_OIDC_ISSUER: 'https://token.actions.githubusercontent.com',
    CANARY_OIDC_AUDIENCE: 'temporal-canary',
    CANARY_OIDC_JWKS: '/etc/canary/oidc/jwks.json',
    CANARY_OIDC_GROUPS_CLAIM: 'groups',
    CANARY_REQUIRE_VERIFIED: 'true',
    // The sweeper's schedule, in the namespaces where its role is bound.
    CANARY_SWEEP_EVERY: '5m',
    CANARY_SWEEP_NAMESPACES: 'shop,mesh',
  });
  expect(
    spec.volumes!.filter((v) => ['identity', 'oidc'].includes(v.name)).map((v) => v.secret?.secretName),
  ).toEqual(['canary-allowed-signers', 'canary-jwks']);
  // The rules and the dashboard are deploy/monitoring's, as shipped.
  const shipped = (file: string) => fs.readFileSync(path.join(ROOT, 'deploy', 'monitoring', file), 'utf8');
  const rule = docs.find((o) => o.kind === 'PrometheusRule')!;
  expect(rule.spec).toEqual(parse(shipped('prometheus-rules.yaml'))[0].spec);
  const dashboard = docs.find((o) => o.kind === 'ConfigMap')!;
  expect(JSON.parse(dashboard.data['temporal-canary.json'])).toEqual(
    JSON.parse(shipped('grafana-dashboard.json')),
  );
  expect(spec.containers[0].ports).toEqual([{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
  // Secrets only by reference: the API key from its Secret, never a value.
  const apiKey = spec.containers[0].env!.find((e) => e.name === 'TEMPORAL_API_KEY')!;
  expect(apiKey.valueFrom?.secretKeyRef).toEqual({ name: 'temporal-api-key', key: 'api-key' });
  // Every file the environment names is under a mounted Secret.
  const mounts = spec.containers[0].volumeMounts!.map((m) => m.mountPath);
  for (const [name, value] of Object.entries(env)) {
    if (!value.startsWith('/etc/')) continue;
    expect([name, mounts.some((m) => value.startsWith(`${m}/`))]).toEqual([name, true]);
  }
  // The Job registers exactly what the workflow writes, with the CLI's own TLS variables.
  const script = job.spec!.template.spec!.containers[0].args!.join(' ');
  for (const [name, type] of SEARCH_ATTRIBUTES) expect(script).toContain(`${name}:${type}`);
  expect(envOf(job.spec!.template.spec!)).toMatchObject({
    TEMPORAL_ADDRESS: 'temporal.example.com:7233',
    TEMPORAL_NAMESPACE: 'rollouts',
    TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/temporal-tls/tls.crt',
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/etc/temporal-tls/ca.crt',
  });
});

test("the chart's roles are deploy/rbac.yaml's, and the defaults give a worker configuration it accepts", async () => {
  const docs = await template(REQUIRED);
  expect(docs.map((o) => o.kind).sort()).toEqual([
    ...Array(8).fill('ClusterRole'),
    'Deployment',
    'ServiceAccount',
  ]);
  const shipped = parse(fs.readFileSync(path.join(ROOT, 'deploy', 'rbac.yaml'), 'utf8')).filter(
    (o) => o.kind === 'ClusterRole',
  );
  const rules = (list: Obj[]): Record<string, unknown> =>
    Object.fromEntries(list.filter((o) => o.kind === 'ClusterRole').map((o) => [o.metadata.name, o.rules]));
  expect(rules(docs)).toEqual(rules(shipped));

  const deployment = docs.find((o) => o.kind === 'Deployment') as V1Deployment;
  const env = envOf(deployment.spec!.template.spec!);
  expect(() => loadWorkerProcessConfig(env)).not.toThrow();
  expect(providerDefaultProblems(env)).toEqual([]);
  expect(providerConfigFromEnv(env)).toMatchObject({
    router: 'istio',
    workloads: 'kubernetes',
    metrics: 'prometheus',
  });
  for (const obj of docs) await objects.create(obj as KubernetesObject, undefined, 'All');
});

test('a required value left out fails the render with what to set, and nothing is printed to apply', async () => {
  const cases: Array<[string[], string]> = [
    [[], 'temporal.address is required'],
    [
      ['--set', 'temporal.address=temporal:7233'],
      'prometheus.url is required with providers.metrics=prometheus',
    ],
    [
      ['--set', 'temporal.address=http://temporal:7233', '--set', 'prometheus.url=http://p:9090'],
      'has a URL scheme',
    ],
    [[...REQUIRED, '--set', 'providers.metrics='], 'providers.metrics is required'],
    [
      [...REQUIRED, '--set', 'serviceMonitor.enabled=true', '--set', 'metrics.enabled=false'],
      'serviceMonitor.enabled needs metrics.enabled',
    ],
    [[...REQUIRED, '--set', 'metrics.port=70000'], 'metrics.port 70000 is not a port number'],
    [
      [...REQUIRED, '--set', 'identity.oidc.issuer=https://idp.example.com'],
      'identity.oidc.audience is required with the other identity.oidc settings',
    ],
    [
      [
        ...REQUIRED,
        '--set',
        'rollouts.namespaces[0].name=shop',
        '--set',
        'rollouts.namespaces[0].routers[0]=linkerd',
      ],
      'unknown router "linkerd"',
    ],
    [
      [
        ...REQUIRED,
        '--set',
        'rollouts.namespaces[0].name=shop',
        '--set',
        'rollouts.namespaces[0].routers[0]=replicas',
      ],
      'the replicas router needs a Deployment workload',
    ],
  ];
  for (const [args, message] of cases) {
    const r = await runHelm(helm, ['template', 'temporal-canary', CHART, ...args]);
    expect([args, r.code !== 0, r.stdout]).toEqual([args, true, '']);
    expect(r.stderr).toContain(message);
  }
  // helm lint renders with `fail` turned into a note (Helm's choice: a chart may require values), so it says it
  // without failing; install and template fail.
  const lint = await runHelm(helm, ['lint', CHART]);
  expect(lint.stderr).toContain('temporal.address is required');
});

test("deploy/README.md's helm install, run as printed (a server-side dry run against the API server)", async () => {
  const readme = fs.readFileSync(path.join(ROOT, 'deploy', 'README.md'), 'utf8');
  const from = readme.indexOf('## The Helm chart');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1];
  // One command, continued with backslashes; words as a POSIX shell splits them (single quotes only here).
  const words = (block.replace(/\\\n/g, ' ').match(/'[^']*'|\S+/g) ?? []).map((w) =>
    w.replace(/^'(.*)'$/, '$1'),
  );
  expect(words.slice(0, 2)).toEqual(['helm', 'install']);
  await kube.createNamespace('temporal-canary');
  await kube.createNamespace('shop');
  const kubeconfig = kube.kubeconfigFile('admin');
  const r = await runHelm(helm, [...words.slice(1), '--dry-run=server', '--kubeconfig', kubeconfig]);
  expect([r.code, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toContain('STATUS: pending-install');
  expect(r.stdout).toContain('kind: RoleBinding');
});

test("controller.enabled adds the CanaryRollout controller, with deploy/controller.yaml's rules; crds/ holds the CRD", async () => {
  const docs = await template([...REQUIRED, '--set', 'controller.enabled=true', '--include-crds']);
  const controller = docs.filter((o) => o.metadata?.labels?.['app.kubernetes.io/component'] === 'controller');
  expect(controller.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).sort()).toEqual(
    [
      `ClusterRole//temporal-canary-controller`,
      `ClusterRoleBinding//temporal-canary-controller`,
      `Deployment/${RELEASE_NS}/temporal-canary-controller`,
      `Role/${RELEASE_NS}/temporal-canary-controller-lease`,
      `RoleBinding/${RELEASE_NS}/temporal-canary-controller-lease`,
      `ServiceAccount/${RELEASE_NS}/temporal-canary-controller`,
    ].sort(),
  );
  // The CRD as deploy/crds ships it (a template, not crds/: Helm upgrades templates, never crds/).
  const crd = docs.find((o) => o.kind === 'CustomResourceDefinition')!;
  expect(crd).toEqual(
    parse(fs.readFileSync(path.join(ROOT, 'deploy', 'crds', 'canaryrollouts.yaml'), 'utf8'))[0],
  );
  const shipped = parseAllDocuments(
    fs.readFileSync(path.join(ROOT, 'deploy', 'controller.yaml'), 'utf8'),
  ).map((d) => d.toJS() as Obj);
  for (const kind of ['ClusterRole', 'Role']) {
    expect(controller.find((o) => o.kind === kind)!.rules).toEqual(
      shipped.find((o) => o.kind === kind)!.rules,
    );
  }
  // Cluster-scoped role and the ServiceAccount first; the API server accepts each (dry run) and Pod Security the pod.
  const order = ['ClusterRole', 'ServiceAccount', 'Role'];
  for (const obj of [...controller].sort(
    (a, b) => Number(!order.includes(a.kind)) - Number(!order.includes(b.kind)),
  )) {
    await objects.create(obj as KubernetesObject, undefined, 'All');
  }
  const deployment = controller.find((o) => o.kind === 'Deployment') as V1Deployment;
  await admin.core.createNamespacedPod({
    namespace: RELEASE_NS,
    body: { metadata: { name: 'controller' }, spec: deployment.spec!.template.spec! },
    dryRun: 'All',
  });
  expect(deployment.spec!.template.spec!.containers[0].command).toEqual([
    'node',
    'dist/client/cli.js',
    'controller',
  ]);
});
