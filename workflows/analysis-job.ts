// Validation of a check's `job` source (issue 17): each round runs a Kubernetes Job to its end, and its end is the
// check's value: 1 when it succeeded, 0 when it failed. The Job is written as a Job hook's is (plan-hooks.ts:
// an inline pod template or a ConfigMap's key, a timeout), and run by the same runner (activities/hooks/job.ts).
// Without bands of its own, a failed Job is a critical breach (the rollout rolls back at once).
import type { JobHookAction } from './plan-hooks';
import { checkOneValueFits } from './analysis-web';
import { JOB_FIELDS, checkJob, checkJobStructure } from './plan-hooks';
import { Collector, describe, isObject, type Obj, type Segment } from './problems';

export const JOB_CHECK_FIELDS = JOB_FIELDS;

/** A `job` check's Job may run this long unless it says otherwise (a round waits for it). */
export const JOB_CHECK_DEFAULT_TIMEOUT = '5m';
/** And at most this long. */
const MAX_JOB_CHECK_TIMEOUT_MS = 30 * 60_000;

/** `job: { template | configMapRef, timeout?, ttl? }` of check `name`; undefined when unusable. */
export function checkJobCheck(
  c: Collector,
  value: unknown,
  path: Segment[],
  name: string,
): JobHookAction | undefined {
  if (!isObject(value)) {
    c.add(
      path,
      `check "${name}": must be an object like { template: { spec: { containers: [...] } } }, got ${describe(value)}`,
    );
    return undefined;
  }
  checkJobStructure(c, value, path);
  const job = checkJob(c, value, path, JOB_CHECK_DEFAULT_TIMEOUT);
  if (job && job.timeoutMs > MAX_JOB_CHECK_TIMEOUT_MS) {
    c.add(
      [...path, 'timeout'],
      `must be at most 30m (a round waits for the Job), got ${describe(value.timeout)}`,
    );
    return undefined;
  }
  return job;
}

/** The fields a job check cannot have: its value is one Job's end, now, with no stable side. */
export function checkJobFits(c: Collector, spec: Obj, path: Segment[]): void {
  checkOneValueFits(c, spec, path, 'job', "a job check's value is its Job's end");
}

/**
 * A job check as written, with the bands it gets when it names none: success is a Job that succeeded (value 1), and
 * a failed one (value 0) is a critical breach. Bands given in the plan are kept as written.
 */
export function withJobDefaults(spec: Obj): Obj {
  if (spec.job === undefined) return spec;
  if (
    spec.success !== undefined ||
    spec.abort !== undefined ||
    spec.max !== undefined ||
    spec.min !== undefined
  ) {
    return spec;
  }
  return { ...spec, success: { min: 1 }, abort: { min: 1, severity: 'critical' } };
}
