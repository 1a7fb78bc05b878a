// Built-in plans, taken from the reference playbooks (shared/seeds). Thresholds: error-rate in %, latency in ms.
import type { PlanSpec } from './plan';

export const PRESETS: Record<string, PlanSpec> = {
  /** AI-model playbook (seed 003): 5 % 1 h, 10 % until 4 h, 25 % until 24 h, 50 % until 48 h, then 100 %. */
  default: {
    name: 'default',
    analysis: {
      interval: '1m',
      checks: [
        { name: 'error-rate', metric: 'error-rate', max: 1 },
        // The playbook's abort threshold: p95 above 5 s.
        { name: 'latency-p95', metric: 'latency-p95', max: 5000 },
      ],
    },
    stages: [
      { weight: 5, hold: '1h' },
      { weight: 10, hold: '3h' },
      { weight: 25, hold: '20h' },
      { weight: 50, hold: '24h' },
      { weight: 100 },
    ],
    // The playbook soaks 24 h before the old version is removed.
    promotion: { cleanupDelay: '24h' },
  },

  /** Flagger plan (seed 001): 5/10/25/50 % for 5/10/15/20 min; abort after 3 consecutive failures. */
  progressive: {
    name: 'progressive',
    analysis: {
      interval: '1m',
      failureLimit: 3,
      checks: [
        { name: 'error-rate', metric: 'error-rate', max: 1 },
        { name: 'latency-p99', metric: 'latency-p99', max: 500 },
      ],
    },
    stages: [
      { weight: 5, hold: '5m' },
      { weight: 10, hold: '10m' },
      { weight: 25, hold: '15m' },
      { weight: 50, hold: '20m' },
      { weight: 100 },
    ],
  },

  /** NGINX-ingress canary (seed 004): 5/25/50 % for 60 s each. */
  quick: {
    name: 'quick',
    analysis: {
      interval: '1m',
      checks: [
        { name: 'error-rate', metric: 'error-rate', max: 5 },
        { name: 'latency-p95', metric: 'latency-p95', max: 1000 },
      ],
    },
    stages: [
      { weight: 5, hold: '60s' },
      { weight: 25, hold: '60s' },
      { weight: 50, hold: '60s' },
      { weight: 100 },
    ],
  },

  /** GPU/model workloads (seed 000): 10/50 % with 5 min observation; roll back on errors for 2+ minutes. */
  'gpu-model': {
    name: 'gpu-model',
    analysis: {
      interval: '1m',
      failureLimit: 2,
      checks: [
        { name: 'error-rate', metric: 'error-rate', max: 1 },
        { name: 'latency-p99', metric: 'latency-p99', max: 500 },
      ],
    },
    stages: [{ weight: 10, hold: '5m' }, { weight: 50, hold: '5m' }, { weight: 100 }],
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}
