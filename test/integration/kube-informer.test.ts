// The controller's CanaryRollout informer against a real kube-apiserver, reached through a small HTTP proxy that can
// (a) answer a watch with 410 Gone, as an API server does when the resourceVersion is older than its watch window,
// and (b) refuse connections, as an API server restarting does. Meanwhile objects are created and deleted on the
// real server: after the 410 the informer re-lists and misses nothing (the new object added, the deleted one reported
// deleted); after refused connections it restarts by itself (client-node 1.4 stops there) and catches up the same way.
import * as http from 'node:http';
import * as https from 'node:https';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { kubeClients, type KubeClients } from '../../activities/kube/client';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { GROUP, PLURAL, VERSION } from '../../controller/crd';
import { startRolloutInformer, type RolloutInformer } from '../../controller/informer';

jest.setTimeout(120_000);

const NS = 'informer';
let kube: KubeServer;
let admin: KubeClients;
let proxy: http.Server;
let informer: RolloutInformer | undefined;
/** What the proxy does with the next watch requests. */
let mode: 'pass' | 'gone' | 'refuse' = 'pass';
const watches: string[] = [];
/** Each list of CanaryRollouts that went through (a re-list after the 410 must be among them). */
const lists: number[] = [];

beforeAll(async () => {
  kube = await startKubeServer({ crds: 'none' });
  const kc = kube.kubeConfig('admin');
  admin = kubeClients(kc);
  const crd = parse(
    fs.readFileSync(path.join(__dirname, '..', '..', 'deploy', 'crds', 'canaryrollouts.yaml'), 'utf8'),
  ) as object;
  await admin.custom.createClusterCustomObject({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    body: crd,
  });
  await kube.createNamespace(NS);
  const upstream = new URL(kube.url);
  const tls: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(tls);
  proxy = http.createServer((req, res) => {
    const watch = (req.url ?? '').includes('watch=true');
    if (watch) watches.push(`${mode} ${req.url}`);
    else if ((req.url ?? '').includes(`/${PLURAL}`) && req.method === 'GET') lists.push(Date.now());
    if (watch && mode === 'refuse') {
      req.socket.destroy();
      return;
    }
    if (watch && mode === 'gone') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        `${JSON.stringify({
          type: 'ERROR',
          object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 },
        })}\n`,
      );
      return;
    }
    const out = https.request(
      {
        ...tls,
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        // The admin's credentials (a client certificate or a bearer token) are the proxy's.
        headers: { ...req.headers, ...(tls.headers as object) },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
}, 120_000);

afterAll(async () => {
  await informer?.stop();
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  await kube?.stop();
});

const body = (name: string) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'CanaryRollout',
  metadata: { name, namespace: NS },
  spec: { target: {}, plan: { preset: 'quick' }, version: 'v1' },
});
const api = { group: GROUP, version: VERSION, plural: PLURAL, namespace: NS };

async function until(what: string, fn: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; watches: ${watches.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a watch answered 410 Gone re-lists and misses nothing; a refused watch is restarted', async () => {
  // Wait for the API server to serve the new kind.
  await until('the CRD served', () => true);
  for (let i = 0; ; i++) {
    try {
      await admin.custom.createNamespacedCustomObject({ ...api, body: body('a') });
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const kc = new KubeConfig();
  const { port } = proxy.address() as AddressInfo;
  kc.loadFromOptions({
    // Plain HTTP to the proxy on loopback (client-node wants skipTLSVerify said for http://).
    clusters: [{ name: 'proxy', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'none' }],
    contexts: [{ name: 'proxy', cluster: 'proxy', user: 'none' }],
    currentContext: 'proxy',
  });
  const events: string[] = [];
  const logs: string[] = [];
  const names = () => (informer?.list() ?? []).map((o) => o.metadata.name).sort();
  informer = startRolloutInformer(kc, {
    onChange: (o, deleted) => events.push(`${deleted ? 'deleted' : 'seen'} ${o.metadata.name}`),
    log: (l) => logs.push(l),
  });
  await until('a listed', () => names().join() === 'a');

  // 410: changes made while the watch is gone must still arrive, by the re-list.
  mode = 'gone';
  const watchesBefore = watches.length;
  const listsBefore = lists.length;
  proxy.closeAllConnections(); // ends the open watch: the informer resumes it, and gets 410
  await admin.custom.createNamespacedCustomObject({ ...api, body: body('b') });
  await admin.custom.deleteNamespacedCustomObject({ ...api, name: 'a' });
  await until('a watch answered 410', () => watches.slice(watchesBefore).some((w) => w.startsWith('gone')));
  mode = 'pass';
  await until('b listed and a gone', () => names().join() === 'b');
  expect(events).toEqual(expect.arrayContaining(['seen b', 'deleted a']));
  expect(lists.length).toBeGreaterThan(listsBefore); // the 410 led to a re-list

  // Refused connections: client-node stops; the informer restarts itself and catches up.
  mode = 'refuse';
  proxy.closeAllConnections();
  await until('a refused watch', () => watches.some((w) => w.startsWith('refuse')));
  await admin.custom.createNamespacedCustomObject({ ...api, body: body('c') });
  mode = 'pass';
  await until('c listed after the restart', () => names().join() === 'b,c');
  expect(informer.stats().restarts).toBeGreaterThan(0);
});
