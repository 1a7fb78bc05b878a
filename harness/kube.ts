// Starts a real Kubernetes API server for tests: etcd and kube-apiserver (no kubelet, no controller manager) on
// loopback, with TLS from a throwaway CA, static tokens for an admin user (system:masters) and a restricted user
// (only what a test grants it with RBAC), and the Istio, Gateway API and SMI CRDs. Both processes are stopped by
// their process ids, and a watchdog stops them if this process dies first.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../demo/dev-server';
import { isExecutableFile, projectRoot } from '../demo/temporal-bin';
import { signal, startWatchdog } from '../demo/watchdog';

export type CrdSet = 'istio' | 'gateway' | 'smi';
export type KubeUser = 'admin' | 'restricted';

export interface KubeServer {
  /** `https://127.0.0.1:<port>` */
  url: string;
  caFile: string;
  caPem: string;
  pids: { etcd: number; apiserver: number };
  /** gitVersion reported by /version, e.g. v1.34.4 */
  version: string;
  /** KubeConfig for the admin user (group system:masters) and for the restricted user (only what tests grant it). */
  kubeConfig(user: KubeUser): KubeConfig;
  /** Writes a kubeconfig file (for child processes: KUBECONFIG=<file>) and returns its path. */
  kubeconfigFile(user: KubeUser): string;
  /** Creates the namespace (idempotent) and returns it. */
  createNamespace(name: string): Promise<string>;
  /**
   * Grants the restricted user these RBAC rules in a namespace (Role + RoleBinding, idempotent, replaces a previous
   * grant of the same name). Resolves once the authorizer applies them.
   */
  grant(namespace: string, name: string, rules: V1PolicyRule[]): Promise<void>;
  /** Deletes a CRD by name (e.g. 'trafficsplits.split.smi-spec.io') and waits until it is gone; reinstall with installCrds(). */
  deleteCrd(name: string): Promise<void>;
  /**
   * Installs CRD sets (default all) and waits until each CRD is Established. (The API server itself delays the first
   * create of a custom object by 2 s when its CRD became Established less than 2 s before.)
   */
  installCrds(which?: CrdSet[]): Promise<void>;
  /** The tail of a process's output (for error messages). */
  output(process: 'etcd' | 'apiserver'): string;
  /** Kills apiserver then etcd by pid, waits for both to exit, removes the temp dir. */
  stop(): Promise<void>;
}

export interface KubeServerOptions {
  /** CRD sets to install before resolving (default all three); 'none' for none. */
  crds?: CrdSet[] | 'none';
  /** How long to wait for the API server's /readyz (default 60 s). */
  readyTimeoutMs?: number;
}

export const KUBE_ASSETS_HINT =
  'run bash scripts/kube-assets.sh (builds kube-apiserver once, ~7 min) or set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd';

/** The user name of the restricted identity (RBAC subject kind User). */
export const RESTRICTED_USER = 'canary-restricted';
export const ADMIN_USER = 'canary-admin';

const HOST = '127.0.0.1';
const ALL_CRDS: CrdSet[] = ['istio', 'gateway', 'smi'];
const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_CHARS = 8_000;
// The project root from the sources and from dist-dev/ alike (the bench runs the compiled harness).
const ROOT = projectRoot();
const SMI_CRDS = path.join(ROOT, 'harness', 'crds', 'smi-trafficsplit.yaml');
const execFileAsync = promisify(execFile);

// --- binaries and CRD files --------------------------------------------------------------------------------

interface KubeAssets {
  apiserver: string;
  etcd: string;
  gatewayCrds?: string;
  istioCrds?: string;
}

// Keyed by KUBEBUILDER_ASSETS (the script looks there first), so a test may change it.
const scriptAssets = new Map<string, Promise<KubeAssets>>();

/** Runs scripts/kube-assets.sh once per process (fast once the binary is built) and reads its KEY=VALUE lines. */
function assetsFromScript(): Promise<KubeAssets> {
  const key = process.env.KUBEBUILDER_ASSETS ?? '';
  let cached = scriptAssets.get(key);
  if (cached) return cached;
  cached = (async () => {
    const script = path.join(ROOT, 'scripts', 'kube-assets.sh');
    let stdout: string;
    try {
      // Never start the ~7 minute build from inside a test: that is what `npm test`'s setup step is for.
      ({ stdout } = await execFileAsync('bash', [script], {
        env: { ...process.env, CANARY_KUBE_NO_BUILD: '1' },
        maxBuffer: 1 << 20,
        timeout: 300_000,
      }));
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(
        `Kubernetes test binaries not available: ${KUBE_ASSETS_HINT}\n` +
          `(bash scripts/kube-assets.sh failed: ${(e.stderr || e.message).trim()})`,
      );
    }
    const values = new Map<string, string>();
    for (const line of stdout.split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) values.set(m[1], m[2]);
    }
    const apiserver = values.get('KUBE_APISERVER');
    const etcd = values.get('ETCD');
    if (!apiserver || !etcd) {
      throw new Error(
        `scripts/kube-assets.sh printed no KUBE_APISERVER/ETCD (${KUBE_ASSETS_HINT}):\n${stdout}`,
      );
    }
    return {
      apiserver,
      etcd,
      gatewayCrds: values.get('GATEWAY_API_CRDS'),
      istioCrds: values.get('ISTIO_CRDS'),
    };
  })();
  scriptAssets.set(key, cached);
  cached.catch(() => scriptAssets.delete(key));
  return cached;
}

/** KUBEBUILDER_ASSETS first (when it has both binaries and no CRD files are needed), else kube-assets.sh. */
async function findAssets(needCrdFiles: boolean): Promise<KubeAssets> {
  const dir = process.env.KUBEBUILDER_ASSETS;
  let assets: KubeAssets;
  if (
    dir &&
    !needCrdFiles &&
    isExecutableFile(path.join(dir, 'kube-apiserver')) &&
    isExecutableFile(path.join(dir, 'etcd'))
  ) {
    assets = { apiserver: path.join(dir, 'kube-apiserver'), etcd: path.join(dir, 'etcd') };
  } else {
    assets = await assetsFromScript();
  }
  for (const bin of [assets.apiserver, assets.etcd]) {
    if (!isExecutableFile(bin)) throw new Error(`${bin} is not an executable file: ${KUBE_ASSETS_HINT}`);
  }
  return assets;
}

/**
 * A CRD as written in its YAML file. It is sent as it is (through CustomObjectsApi, whose body is untyped): the typed
 * ApiextensionsV1Api would drop every field it knows under another name (x-kubernetes-int-or-string, $ref, ...).
 */
interface RawCrd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { group: string; names: { plural: string }; versions: Array<{ name: string; storage?: boolean }> };
}

const crdCache = new Map<CrdSet, Promise<RawCrd[]>>();

/** The CRD documents of a set, parsed once per process. Non-CRD documents (and kustomization files) are skipped. */
function crdsOf(which: CrdSet): Promise<RawCrd[]> {
  let cached = crdCache.get(which);
  if (!cached) {
    cached = (async () => {
      let files: string[];
      if (which === 'smi') {
        files = [SMI_CRDS];
      } else {
        const assets = await assetsFromScript();
        const where = which === 'istio' ? assets.istioCrds : assets.gatewayCrds;
        if (!where) throw new Error(`scripts/kube-assets.sh gave no path for the ${which} CRDs`);
        files = fs.statSync(where).isDirectory()
          ? fs
              .readdirSync(where)
              .filter((f) => /\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/i.test(f))
              .sort()
              .map((f) => path.join(where, f))
          : [where];
      }
      const crds: RawCrd[] = [];
      for (const file of files) {
        for (const doc of parseAllDocuments(await fs.promises.readFile(file, 'utf8'))) {
          if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
          const obj = doc.toJS() as RawCrd | null;
          if (obj?.kind === 'CustomResourceDefinition' && obj.apiVersion === 'apiextensions.k8s.io/v1')
            crds.push(obj);
        }
      }
      if (crds.length === 0) throw new Error(`no CustomResourceDefinition found in ${files.join(', ')}`);
      return crds;
    })();
    cached.catch(() => crdCache.delete(which));
    crdCache.set(which, cached);
  }
  return cached;
}

// --- processes ---------------------------------------------------------------------------------------------

interface Proc {
  pid: number;
  child: ChildProcess;
  exited: Promise<void>;
  isDead(): boolean;
  output(): string;
  stop(): Promise<void>;
}

async function startProcess(bin: string, args: string[], cwd: string): Promise<Proc> {
  const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const append = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let dead = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      dead = true;
      resolve();
    }),
  );
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    throw new Error(`cannot run ${bin}: ${spawned?.message ?? 'no process id'} (${KUBE_ASSETS_HINT})`);
  }
  const pid = child.pid;
  // A server left running must not keep this process alive; the watchdog stops it once this process is gone.
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as net.Socket | null)?.unref();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!dead) {
        child.ref(); // keep this process alive until the server has exited
        signal(pid, 'SIGTERM');
        const timer = setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
    })();
    return stopping;
  };
  return { pid, child, exited, isDead: () => dead, output: () => tail.trim(), stop };
}

// --- certificates and tokens -------------------------------------------------------------------------------

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

async function makeCertificates(dir: string): Promise<void> {
  const run = (args: string): Promise<void> => openssl(args.trim().split(/\s+/), dir);
  const ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
  await run(
    `req -x509 ${ec} -keyout ca.key -out ca.crt -days 7 -subj /CN=temporal-canary-test-ca ` +
      '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign',
  );
  await fs.promises.writeFile(
    path.join(dir, 'serving.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\n' +
      'extendedKeyUsage=serverAuth\n' +
      'keyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  await run(`req ${ec} -keyout serving.key -out serving.csr -subj /CN=127.0.0.1`);
  await run(
    'x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile serving.ext -out serving.crt',
  );
  // Service-account token signing (the apiserver does not start without it).
  await run('genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key');
  await run('pkey -in sa.key -pubout -out sa.pub');
}

// --- HTTP helpers ------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: string;
}

function get(url: string, opts: { ca?: string; token?: string; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(
      u,
      {
        ca: opts.ca,
        headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {},
        timeout: opts.timeoutMs ?? 5_000,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

async function waitFor(
  what: string,
  timeoutMs: number,
  attempt: () => Promise<boolean>,
  dead?: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt made';
  for (;;) {
    const died = dead?.();
    if (died) throw new Error(`${died} while waiting for ${what}`);
    try {
      if (await attempt()) return;
      last = 'not yet';
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) throw new Error(`${what} not ready after ${timeoutMs} ms (${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The HTTP status of a failed client-node call (ApiException.code), or undefined. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

async function ignoreStatus<T>(call: Promise<T>, ...statuses: number[]): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statuses.includes(statusOf(err) ?? -1)) return undefined;
    throw err;
  }
}

// --- the server --------------------------------------------------------------------------------------------

export async function startKubeServer(opts: KubeServerOptions = {}): Promise<KubeServer> {
  const crdSets = opts.crds === 'none' ? [] : (opts.crds ?? ALL_CRDS);
  const assets = await findAssets(crdSets.some((s) => s !== 'smi'));
  // Parse the CRD files while the servers start (about a second for all of them, once per test file).
  for (const set of crdSets) crdsOf(set).catch(() => undefined);
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'canary-kube-'));
  const watchdog = startWatchdog({ graceMs: STOP_GRACE_MS, dir });
  const procs: Proc[] = [];

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const p of [...procs].reverse()) await p.stop(); // apiserver first, then etcd
      await fs.promises.rm(dir, { recursive: true, force: true });
      watchdog.dismiss();
    })();
    return stopping;
  };

  try {
    const [, etcdClientPort, etcdPeerPort, securePort] = await Promise.all([
      makeCertificates(dir),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const adminToken = randomBytes(24).toString('hex');
    const restrictedToken = randomBytes(24).toString('hex');
    await fs.promises.writeFile(
      path.join(dir, 'tokens.csv'),
      `${adminToken},${ADMIN_USER},${ADMIN_USER},"system:masters"\n${restrictedToken},${RESTRICTED_USER},${RESTRICTED_USER}\n`,
      { mode: 0o600 },
    );

    // etcd
    const etcdUrl = `http://${HOST}:${etcdClientPort}`;
    const peerUrl = `http://${HOST}:${etcdPeerPort}`;
    const etcdArgs = [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--unsafe-no-fsync=true', // test data: skip fsync, as envtest does
      '--log-level=warn',
    ];
    const etcd = await startProcess(assets.etcd, etcdArgs, dir);
    procs.push(etcd);
    watchdog.watch(etcd.pid);
    try {
      await waitFor(
        `etcd at ${etcdUrl}/health`,
        30_000,
        async () => {
          const r = await get(`${etcdUrl}/health`, { timeoutMs: 2_000 });
          return r.status === 200 && /"health":\s*"true"/.test(r.body);
        },
        () => (etcd.isDead() ? 'etcd exited' : undefined),
      );
    } catch (err) {
      throw new Error(
        `etcd (${assets.etcd} ${etcdArgs.join(' ')}) did not become ready: ${(err as Error).message}\n` +
          `--- etcd output (tail) ---\n${etcd.output() || '(none)'}`,
      );
    }

    // kube-apiserver
    const f = (name: string): string => path.join(dir, name);
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${securePort}`,
      `--bind-address=${HOST}`,
      `--advertise-address=${HOST}`,
      `--tls-cert-file=${f('serving.crt')}`,
      `--tls-private-key-file=${f('serving.key')}`,
      `--client-ca-file=${f('ca.crt')}`,
      `--token-auth-file=${f('tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--endpoint-reconciler-type=none',
      '--disable-admission-plugins=ServiceAccount',
      // Room for the benches' hundreds of rollouts, each with two or three Services (a /24 ran out at about 250).
      '--service-cluster-ip-range=10.0.0.0/16',
      '--allow-privileged=true',
      `--cert-dir=${f('apiserver-certs')}`,
    ];
    const apiserver = await startProcess(assets.apiserver, apiArgs, dir);
    procs.push(apiserver);
    watchdog.watch(apiserver.pid);

    const url = `https://${HOST}:${securePort}`;
    const caFile = f('ca.crt');
    const caPem = await fs.promises.readFile(caFile, 'utf8');
    try {
      await waitFor(
        `kube-apiserver at ${url}/readyz`,
        opts.readyTimeoutMs ?? 60_000,
        async () => (await get(`${url}/readyz`, { ca: caPem, token: adminToken })).status === 200,
        () => (apiserver.isDead() ? 'kube-apiserver exited' : etcd.isDead() ? 'etcd exited' : undefined),
      );
    } catch (err) {
      throw new Error(
        `kube-apiserver (${assets.apiserver}) did not become ready: ${(err as Error).message}\n` +
          `--- kube-apiserver output (tail) ---\n${apiserver.output() || '(none)'}`,
      );
    }
    const versionReply = await get(`${url}/version`, { ca: caPem, token: adminToken });
    const version = String((JSON.parse(versionReply.body) as { gitVersion?: string }).gitVersion);

    const kubeConfig = (user: KubeUser): KubeConfig => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [
          {
            name: 'canary-test',
            server: url,
            caData: Buffer.from(caPem).toString('base64'),
            skipTLSVerify: false,
          },
        ],
        users: [{ name: user, token: user === 'admin' ? adminToken : restrictedToken }],
        contexts: [{ name: user, cluster: 'canary-test', user }],
        currentContext: user,
      });
      return kc;
    };
    const admin = kubeConfig('admin');
    const core = admin.makeApiClient(CoreV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const authz = admin.makeApiClient(AuthorizationV1Api);
    const ext = admin.makeApiClient(ApiextensionsV1Api);
    const custom = admin.makeApiClient(CustomObjectsApi);

    const kubeconfigFile = (user: KubeUser): string => {
      const file = f(`kubeconfig-${user}.json`); // JSON is YAML: kubectl and client libraries read it
      fs.writeFileSync(file, kubeConfig(user).exportConfig(), { mode: 0o600 });
      return file;
    };

    const createNamespace = async (name: string): Promise<string> => {
      await ignoreStatus(core.createNamespace({ body: { metadata: { name } } }), 409);
      return name;
    };

    /** Whether the authorizer lets the restricted user do this (as the apiserver decides, from its RBAC cache). */
    const allowed = async (
      namespace: string,
      group: string,
      resource: string,
      verb: string,
      name?: string,
    ) => {
      const [res, subresource] = resource.split('/', 2);
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: RESTRICTED_USER,
            groups: ['system:authenticated'],
            resourceAttributes: { namespace, group, resource: res, subresource, verb, name },
          },
        },
      });
      return review.status?.allowed === true;
    };
    const attributesOf = (rules: V1PolicyRule[]) =>
      rules.flatMap((r) =>
        (r.apiGroups ?? ['']).flatMap((g) =>
          (r.resources ?? []).flatMap((res) =>
            r.verbs.flatMap((v) =>
              (r.resourceNames?.length ? r.resourceNames : [undefined]).map((n) => [g, res, v, n]),
            ),
          ),
        ),
      ) as Array<[string, string, string, string | undefined]>;

    const grant = async (namespace: string, name: string, rules: V1PolicyRule[]): Promise<void> => {
      const previous = await ignoreStatus(rbac.readNamespacedRole({ name, namespace }), 404);
      const role = { metadata: { name, namespace }, rules };
      if (previous) {
        await rbac.replaceNamespacedRole({
          name,
          namespace,
          body: {
            ...role,
            metadata: { ...role.metadata, resourceVersion: previous.metadata?.resourceVersion },
          },
        });
      } else {
        await rbac.createNamespacedRole({ namespace, body: role });
      }
      const binding = {
        metadata: { name, namespace },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: RESTRICTED_USER }],
      };
      const created = await ignoreStatus(rbac.createNamespacedRoleBinding({ namespace, body: binding }), 409);
      if (!created) await rbac.replaceNamespacedRoleBinding({ name, namespace, body: binding });

      // The RBAC authorizer works from a cache: wait until it applies the new rules (and, for a replaced grant, drops
      // the old ones; something else may still allow those, so that wait is bounded and not an error).
      const granted = attributesOf(rules);
      await waitFor(`RBAC grant ${namespace}/${name}`, 30_000, async () => {
        for (const a of granted) if (!(await allowed(namespace, ...a))) return false;
        return true;
      });
      const key = (a: unknown[]) => JSON.stringify(a);
      const kept = new Set(granted.map(key));
      const dropped = attributesOf(previous?.rules ?? []).filter((a) => !kept.has(key(a)));
      if (dropped.length > 0) {
        await waitFor(`RBAC revocation ${namespace}/${name}`, 3_000, async () => {
          for (const a of dropped) if (await allowed(namespace, ...a)) return false;
          return true;
        }).catch(() => undefined);
      }
    };

    // CRDs are read untyped too: typed reads would run every (large) schema through the client's model classes.
    const crdApi = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' };
    const readCrd = async (name: string) =>
      (await ignoreStatus(custom.getClusterCustomObject({ ...crdApi, name }), 404)) as
        (RawCrd & { status?: { conditions?: Array<{ type: string; status: string }> } }) | undefined;

    const installCrds = async (which: CrdSet[] = ALL_CRDS): Promise<void> => {
      const crds = (await Promise.all(which.map(crdsOf))).flat();
      await Promise.all(
        crds.map((body) => ignoreStatus(custom.createClusterCustomObject({ ...crdApi, body }), 409)),
      );
      await Promise.all(
        crds.map(({ metadata: { name } }) =>
          waitFor(`CRD ${name} Established`, 60_000, async () =>
            Boolean(
              (await readCrd(name))?.status?.conditions?.some(
                (c) => c.type === 'Established' && c.status === 'True',
              ),
            ),
          ),
        ),
      );
    };

    const deleteCrd = async (name: string): Promise<void> => {
      const crd = await readCrd(name);
      if (!crd) return;
      await ignoreStatus(ext.deleteCustomResourceDefinition({ name }), 404);
      // Gone from storage (after its custom objects), and no longer served: until the API server's own cache has
      // caught up, creating an object would still answer 405 (terminating) instead of 404.
      await waitFor(`CRD ${name} deleted`, 60_000, async () => (await readCrd(name)) === undefined);
      const version = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0].name;
      await waitFor(`CRD ${name} no longer served`, 30_000, async () => {
        try {
          await custom.listClusterCustomObject({
            group: crd.spec.group,
            version,
            plural: crd.spec.names.plural,
            limit: 1,
          });
          return false;
        } catch (err) {
          if (statusOf(err) === 404) return true;
          throw err;
        }
      });
    };

    const server: KubeServer = {
      url,
      caFile,
      caPem,
      pids: { etcd: etcd.pid, apiserver: apiserver.pid },
      version,
      kubeConfig,
      kubeconfigFile,
      createNamespace,
      grant,
      deleteCrd,
      installCrds,
      output: (which) => (which === 'etcd' ? etcd : apiserver).output(),
      stop,
    };
    if (crdSets.length > 0) await installCrds(crdSets);
    return server;
  } catch (err) {
    await stop();
    throw err;
  }
}
