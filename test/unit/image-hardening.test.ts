// The image runs as a non-root user with a read-only root filesystem: the Dockerfile's runtime user is the one the
// manifests (deploy/worker.yaml, the chart) run as, and they mount the only writable place, /tmp, which is where the
// image points temporary files. No Docker here: the manifests themselves are dry-run against a real API server by
// test/integration/kube-rbac.test.ts and helm-chart.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');
const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const runtime = dockerfile.split(/^FROM /m).pop()!;

test('the runtime stage runs as a numeric non-root user, with temporary files under /tmp', () => {
  const user = /^USER (\d+):(\d+)$/m.exec(runtime);
  expect(user).not.toBeNull();
  expect(Number(user![1])).toBeGreaterThan(0);
  expect(runtime).toMatch(/^ENV TMPDIR=\/tmp$/m);
  // Nothing after USER installs or writes into the image.
  expect(runtime.slice(runtime.indexOf('USER')).match(/^(RUN|COPY|ADD) /gm)).toBeNull();
});

test('deploy/worker.yaml runs the image as that user, read-only, with /tmp an emptyDir', () => {
  const uid = Number(/^USER (\d+)/m.exec(runtime)![1]);
  const deployment = parse(fs.readFileSync(path.join(ROOT, 'deploy', 'worker.yaml'), 'utf8'));
  const pod = deployment.spec.template.spec;
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid, runAsGroup: uid });
  const container = pod.containers[0];
  expect(container.securityContext).toMatchObject({
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
  const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
  expect(pod.volumes.find((v: { name: string }) => v.name === tmp.name)).toHaveProperty('emptyDir');
});

test("the chart's worker template sets the same", () => {
  const template = fs.readFileSync(
    path.join(ROOT, 'deploy', 'helm', 'temporal-canary', 'templates', 'worker.yaml'),
    'utf8',
  );
  const uid = /^USER (\d+)/m.exec(runtime)![1];
  expect(template).toContain(`runAsUser: ${uid}`);
  expect(template).toContain('readOnlyRootFilesystem: true');
  expect(template).toMatch(/- name: tmp\n\s+mountPath: \/tmp/);
  expect(template).toMatch(/- name: tmp\n\s+emptyDir:/);
});
