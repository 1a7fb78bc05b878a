// Stand-ins for the exporters a cluster runs beside the app, for one namespace of the test API server (which runs no
// pods: see kube-controller.ts): kube-state-metrics, the kubelet's cAdvisor and NVIDIA's DCGM exporter. Each scrape
// lists the namespace's Deployments and serves their series as those exporters would, for the pods each Deployment
// would run (spec.replicas of them, named `<deployment>-<template hash>-<suffix>` like a ReplicaSet's pods), so the
// series follow the live objects: a canary Deployment brings its pods' series, scaling it to 0 removes them, and a
// promotion (a new pod template) brings new pod names. Pods `unhealthy` picks (a faulty version's) misbehave:
// containers restart, CPU and memory run at the limits, and the GPU reports uncorrectable ECC errors.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppsV1Api, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';

/** The exporters this stands in for. */
export type ClusterSource = 'kube-state-metrics' | 'cadvisor' | 'dcgm';
export const CLUSTER_SOURCES: readonly ClusterSource[] = ['kube-state-metrics', 'cadvisor', 'dcgm'];

/** The series each source serves here (the real exporters serve many more). */
export const CLUSTER_SERIES: Readonly<Record<ClusterSource, readonly string[]>> = {
  'kube-state-metrics': [
    'kube_deployment_spec_replicas',
    'kube_deployment_status_replicas_available',
    'kube_deployment_status_replicas_unavailable',
    'kube_pod_container_status_restarts_total',
    'kube_pod_container_resource_limits',
    'kube_pod_container_resource_requests',
  ],
  cadvisor: ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes'],
  dcgm: ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_FB_USED'],
};

export interface ClusterExporterOptions {
  kc: KubeConfig;
  namespace: string;
  sources: readonly ClusterSource[];
  /** Pods (by their template's labels) that misbehave. Default: none. */
  unhealthy?: (podLabels: Record<string, string>) => boolean;
}

export interface ClusterExporter {
  /** http://127.0.0.1:port/metrics */
  url: string;
  stop(): Promise<void>;
}

/** What a healthy and an unhealthy container use of its limits, and how often an unhealthy one fails. */
const HEALTHY_SHARE = 0.35;
const UNHEALTHY_SHARE = 0.97;
const RESTART_EVERY_S = 5;
const ECC_ERROR_EVERY_S = 4;
/** Without limits: what a container is taken to have. */
const DEFAULT_CPU_CORES = 0.5;
const DEFAULT_MEMORY_BYTES = 512 * 2 ** 20;

const SUFFIX_CHARS = 'bcdfghjklmnpqrstvwxz2456789'; // the alphabet Kubernetes uses for generated names

function shortHash(text: string, length: number): string {
  const digest = createHash('sha256').update(text).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += SUFFIX_CHARS[digest[i] % SUFFIX_CHARS.length];
  return out;
}

/** A Kubernetes quantity (`500m`, `2`, `512Mi`, `1G`) as a number; undefined when it is not one. */
export function parseQuantity(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const factors: Record<string, number> = {
    '': 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  const f = factors[m[2]];
  return f === undefined || !Number.isFinite(n) ? undefined : n * f;
}

interface Pod {
  name: string;
  uid: string;
  deployment: string;
  labels: Record<string, string>;
  containers: Array<{ name: string; image: string; cpu: number; memory: number; limited: boolean }>;
}

/** The pods a Deployment would run now: spec.replicas of them, named after its pod template. */
export function podsOf(d: V1Deployment): Pod[] {
  const name = d.metadata?.name ?? '';
  const template = d.spec?.template;
  const hash = shortHash(JSON.stringify(template ?? {}), 10);
  const replicas = d.spec?.replicas ?? 1;
  const labels = { ...(template?.metadata?.labels ?? {}) };
  const containers = (template?.spec?.containers ?? []).map((c) => {
    const cpu = parseQuantity(c.resources?.limits?.cpu);
    const memory = parseQuantity(c.resources?.limits?.memory);
    return {
      name: c.name,
      image: c.image ?? '',
      cpu: cpu ?? DEFAULT_CPU_CORES,
      memory: memory ?? DEFAULT_MEMORY_BYTES,
      limited: cpu !== undefined || memory !== undefined,
    };
  });
  return Array.from({ length: replicas }, (_, i) => {
    const pod = `${name}-${hash}-${shortHash(`${name}/${hash}/${i}`, 5)}`;
    return {
      name: pod,
      uid: createHash('sha256').update(pod).digest('hex').slice(0, 32),
      deployment: name,
      labels,
      containers,
    };
  });
}

export async function startClusterExporter(opts: ClusterExporterOptions): Promise<ClusterExporter> {
  const apps = opts.kc.makeApiClient(AppsV1Api);
  const sources = new Set(opts.sources);
  const unhealthy = opts.unhealthy ?? (() => false);
  // When each pod was first seen: its counters count from there.
  const born = new Map<string, number>();

  async function render(): Promise<string> {
    const list = await apps.listNamespacedDeployment({ namespace: opts.namespace });
    const now = Date.now();
    const families = new Map<string, { type: 'gauge' | 'counter'; help: string; lines: string[] }>();
    const add = (
      name: string,
      type: 'gauge' | 'counter',
      help: string,
      labels: Record<string, string>,
      value: number,
    ) => {
      let f = families.get(name);
      if (!f) {
        f = { type, help, lines: [] };
        families.set(name, f);
      }
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
        .join(',');
      f.lines.push(`${name}{${l}} ${Number.isInteger(value) ? value : value.toFixed(6)}`);
    };
    const ns = opts.namespace;
    for (const d of list.items) {
      const deployment = d.metadata?.name ?? '';
      if (sources.has('kube-state-metrics')) {
        const ksm = 'kube-state-metrics';
        add(
          'kube_deployment_spec_replicas',
          'gauge',
          ksm,
          { namespace: ns, deployment },
          d.spec?.replicas ?? 1,
        );
        add(
          'kube_deployment_status_replicas_available',
          'gauge',
          ksm,
          { namespace: ns, deployment },
          d.status?.availableReplicas ?? 0,
        );
        add(
          'kube_deployment_status_replicas_unavailable',
          'gauge',
          ksm,
          { namespace: ns, deployment },
          d.status?.unavailableReplicas ?? 0,
        );
      }
      for (const pod of podsOf(d)) {
        if (!born.has(pod.name)) born.set(pod.name, now);
        const ageS = (now - born.get(pod.name)!) / 1000;
        const bad = unhealthy(pod.labels);
        const share = bad ? UNHEALTHY_SHARE : HEALTHY_SHARE;
        const podLabels = { namespace: ns, pod: pod.name };
        let podCpu = 0;
        let podMemory = 0;
        pod.containers.forEach((c, index) => {
          const container = { ...podLabels, container: c.name };
          if (sources.has('kube-state-metrics')) {
            const ksm = 'kube-state-metrics';
            add(
              'kube_pod_container_status_restarts_total',
              'counter',
              ksm,
              { ...container, uid: pod.uid },
              bad ? Math.floor(ageS / RESTART_EVERY_S) : 0,
            );
            if (c.limited) {
              for (const [family, factor] of [
                ['kube_pod_container_resource_limits', 1],
                ['kube_pod_container_resource_requests', 0.5],
              ] as const) {
                add(
                  family,
                  'gauge',
                  ksm,
                  { ...container, node: 'node-1', resource: 'cpu', unit: 'core', uid: pod.uid },
                  c.cpu * factor,
                );
                add(
                  family,
                  'gauge',
                  ksm,
                  { ...container, node: 'node-1', resource: 'memory', unit: 'byte', uid: pod.uid },
                  c.memory * factor,
                );
              }
            }
          }
          if (sources.has('cadvisor')) {
            const id = `/kubepods/pod${pod.uid}/${c.name}`;
            const cpu = c.cpu * share * ageS;
            const memory = Math.round(c.memory * share);
            podCpu += cpu;
            podMemory += memory;
            add(
              'container_cpu_usage_seconds_total',
              'counter',
              'cAdvisor',
              { ...container, cpu: 'total', id, image: c.image, name: `k8s_${c.name}_${pod.name}` },
              cpu,
            );
            add(
              'container_memory_working_set_bytes',
              'gauge',
              'cAdvisor',
              { ...container, id, image: c.image, name: `k8s_${c.name}_${pod.name}` },
              memory,
            );
          }
          if (sources.has('dcgm') && index === 0) {
            // One GPU per pod, attributed to its first container (dcgm-exporter's Kubernetes mapping).
            const gpu = {
              gpu: '0',
              UUID: `GPU-${pod.uid.slice(0, 8)}-${pod.uid.slice(8, 12)}`,
              device: 'nvidia0',
              modelName: 'NVIDIA A100-SXM4-40GB',
              Hostname: 'node-1',
              ...container,
            };
            add(
              'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL',
              'counter',
              'DCGM: volatile double-bit ECC errors',
              gpu,
              bad ? Math.floor(ageS / ECC_ERROR_EVERY_S) : 0,
            );
            add('DCGM_FI_DEV_GPU_UTIL', 'gauge', 'DCGM: GPU utilisation (%)', gpu, bad ? 99 : 55);
            add('DCGM_FI_DEV_FB_USED', 'gauge', 'DCGM: framebuffer used (MiB)', gpu, bad ? 39_000 : 21_000);
          }
        });
        if (sources.has('cadvisor')) {
          // cAdvisor's pod-level cgroup (container=""): why queries say container!="".
          const id = `/kubepods/pod${pod.uid}`;
          add(
            'container_cpu_usage_seconds_total',
            'counter',
            'cAdvisor',
            { ...podLabels, container: '', cpu: 'total', id },
            podCpu,
          );
          add(
            'container_memory_working_set_bytes',
            'gauge',
            'cAdvisor',
            { ...podLabels, container: '', id },
            podMemory,
          );
        }
      }
    }
    const out: string[] = [];
    for (const [name, f] of families)
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`, ...f.lines);
    return `${out.join('\n')}\n`;
  }

  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    render().then(
      (body) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body),
      (err: unknown) => res.writeHead(503).end(`listing Deployments failed: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
