// The hook activity: runs one hook (an HTTP call or a Kubernetes Job) for the rollout machine and answers with its
// result. Its secret (the HMAC key that signs HTTP hooks) comes from the worker's environment, never from the plan.
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import type { JobHookAction } from '../../workflows/plan-hooks';
import { cancellation, heartbeat, heartbeating } from '../heartbeat';
import type { KubeClients } from '../kube/client';
import type { Secret } from '../alerts/secrets';
import { ProviderError } from '../types';
import { runHttpHook } from './http';
import { createLoadActivities } from './load';
import { JOB_PURPOSE_LABEL, JOB_ROLLOUT_LABEL, JobRunner, jobName, labelValue } from './job';
import { NOT_READY_EXIT_CODE, excerptOf, type HookRunInput, type HookRunResult } from './types';

export type { HookRunInput, HookRunResult } from './types';

/** What hooks need from the worker: the HMAC key for HTTP hooks, and the cluster for Job hooks. */
export interface HookProviders {
  /** CANARY_HOOK_SECRET(_FILE), else the alert webhook's key; absent: HTTP hooks go unsigned. */
  secret?: Secret;
  kube?: () => KubeClients;
}

/** A pod template read from a ConfigMap must run something too (the plan's inline template is checked at start). */
export function podTemplate(text: string, where: string): V1PodTemplateSpec {
  let t: unknown;
  try {
    t = parseYaml(text);
  } catch (err) {
    throw new ProviderError(
      'invalid',
      `${where} is not YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const containers = (t as V1PodTemplateSpec | undefined)?.spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    throw new ProviderError('invalid', `${where} must be a pod template with spec.containers (at least one)`);
  }
  return t as V1PodTemplateSpec;
}

async function runJobHook(
  input: HookRunInput,
  action: JobHookAction,
  kube: (() => KubeClients) | undefined,
): Promise<HookRunResult> {
  const started = Date.now();
  if (!kube) {
    throw ApplicationFailure.nonRetryable(
      `hook ${input.hook.name} runs a Job, but this worker has no Kubernetes cluster configured (KUBECONFIG or a service account)`,
      'HookUnconfigured',
    );
  }
  const namespace = input.target.namespace;
  try {
    const signal = cancellation();
    const runner = new JobRunner(kube(), {
      heartbeat: () => heartbeat(),
      ...(signal ? { cancelled: signal } : {}),
    });
    const template = action.template
      ? (action.template as V1PodTemplateSpec)
      : podTemplate(
          await runner.configMapText(namespace, action.configMapRef!),
          `configmap ${action.configMapRef!.name} key ${action.configMapRef!.key}`,
        );
    const name = jobName(`hook-${input.hook.name}`, input.idempotencyKey);
    const end = await runner.run({
      namespace,
      name,
      labels: {
        [JOB_ROLLOUT_LABEL]: labelValue(input.rolloutId),
        [JOB_PURPOSE_LABEL]: labelValue(`hook-${input.point}`),
      },
      podTemplate: template,
      timeoutMs: action.timeoutMs,
      ttlSeconds: action.ttlMs / 1000,
    });
    const excerpt = excerptOf(end.logs ?? '');
    const code = end.exitCode !== undefined ? ` (exit code ${end.exitCode})` : '';
    const detail =
      end.state === 'succeeded'
        ? `job ${name} succeeded${code}`
        : `job ${name} ${end.state === 'timed_out' ? 'timed out' : 'failed'}${code}${end.reason ? `: ${end.reason}` : ''}`;
    const result: HookRunResult['result'] =
      end.state === 'succeeded' ? 'ok' : end.exitCode === NOT_READY_EXIT_CODE ? 'not_ready' : 'failed';
    return { result, detail, tookMs: Date.now() - started, ...(excerpt ? { excerpt } : {}) };
  } catch (err) {
    if (err instanceof ProviderError && err.permanent) {
      throw ApplicationFailure.nonRetryable(`hook ${input.hook.name}: ${err.message}`, 'HookRefused');
    }
    throw err;
  }
}

export function createHookActivities(hooks: HookProviders | undefined) {
  return {
    /** Load during analysis: a stage's load Job, started and stopped (load.ts). */
    ...createLoadActivities(hooks?.kube),
    /**
     * Runs one hook once: `ok`, `not_ready` (a confirm gate's "not yet") or `failed`. A transient failure throws,
     * so the retry policy the workflow gives (the hook's `retries`) tries again with the same Idempotency-Key.
     */
    async runHook(input: HookRunInput): Promise<HookRunResult> {
      const action = input.hook.action;
      return heartbeating(() =>
        action.kind === 'http'
          ? runHttpHook(input, action, hooks?.secret?.value())
          : runJobHook(input, action, hooks?.kube),
      );
    },
  };
}
