// Walks a rollout's continue-as-new chain and counts each run's history events.
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

export interface RunHistory {
  runId: string;
  events: number;
}

export async function runHistories(
  client: Client,
  workflowId: string,
  firstRunId: string,
): Promise<RunHistory[]> {
  const runs: RunHistory[] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const history: temporal.api.history.v1.IHistory = await client.workflow
      .getHandle(workflowId, runId)
      .fetchHistory();
    const events: temporal.api.history.v1.IHistoryEvent[] = history.events ?? [];
    runs.push({ runId, events: events.length });
    runId =
      events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ??
      undefined;
  }
  return runs;
}

/**
 * The activity type a local activity's marker records (the SDK's `core_local_activity` marker, whose `data` detail is
 * a JSON payload naming the activity); undefined for any other marker or event.
 */
export function localActivityType(
  marker: temporal.api.history.v1.IMarkerRecordedEventAttributes | null | undefined,
): string | undefined {
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const data = marker.details?.data?.payloads?.[0]?.data;
  if (!data) return undefined;
  const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as {
    activity_type?: string;
    activityType?: string;
  };
  return parsed.activity_type ?? parsed.activityType;
}
