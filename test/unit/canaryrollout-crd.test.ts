// deploy/crds/canaryrollouts.yaml: the Helm chart ships the same file, its preset enum is the product's presets, and
// the controller's condition types are the ones the issue names. Against the API server (schema and CEL refusals):
// test/integration/kube-controller.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { presetNames } from '../../workflows/presets';
import { CONDITION_TYPES, GROUP, KIND, PLURAL, VERSION } from '../../controller/crd';

const ROOT = path.resolve(__dirname, '..', '..');
const CRD = path.join(ROOT, 'deploy', 'crds', 'canaryrollouts.yaml');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const crd = parse(fs.readFileSync(CRD, 'utf8')) as any;

test("the chart's copy is deploy/crds's", () => {
  expect(
    fs.readFileSync(
      path.join(ROOT, 'deploy', 'helm', 'temporal-canary', 'files', 'canaryrollouts.yaml'),
      'utf8',
    ),
  ).toBe(fs.readFileSync(CRD, 'utf8'));
});

test('names, version and subresource match what the controller uses', () => {
  expect(crd.metadata.name).toBe(`${PLURAL}.${GROUP}`);
  expect(crd.spec.names.kind).toBe(KIND);
  expect(crd.spec.versions.map((v: { name: string }) => v.name)).toEqual([VERSION]);
  expect(crd.spec.versions[0].subresources).toEqual({ status: {} });
  expect(crd.spec.versions[0].additionalPrinterColumns.map((c: { name: string }) => c.name)).toEqual([
    'Phase',
    'Stage',
    'Weight',
    'Version',
    'Age',
  ]);
});

test("the schema's presets are the product's", () => {
  const plan = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.plan;
  expect([...plan.properties.preset.enum].sort()).toEqual(presetNames().sort());
});

test('the conditions the issue names are all there', () => {
  expect(CONDITION_TYPES).toEqual(
    expect.arrayContaining([
      'Progressing',
      'Paused',
      'WaitingForApproval',
      'Promoted',
      'RolledBack',
      'Invalid',
    ]),
  );
});
