// How the workflows deliver one alert event to one sink: the activity options a rollout and a release share.
import type { ActivityOptions } from '@temporalio/workflow';

/**
 * One event to one sink: retried with backoff, and given up after 10 minutes (a dead sink) or on a refusal. It
 * heartbeats while in flight, so a delivery cut off by a worker crash is retried within 10 s, not 30.
 */
export const ALERT_DELIVERY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: ['AlertRejected', 'AlertSinkUnknown'],
  },
};
