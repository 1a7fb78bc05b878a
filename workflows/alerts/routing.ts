// Which sink receives which event. Pure and workflow-safe (it imports only the alert model): the workflow decides,
// per event and per sink, whether to start that sink's delivery activity, so history records only deliveries that
// happen.
//
// Default routing (a plan without routing rules, or a sink no rule names):
//   log, webhook   everything (and any sink added later, until it says otherwise)
//   slack          everything except info-level check_breached: the judge's "healthy again" notes, which the
//                  stepped_forward event that follows already says in one message
//   alertmanager   warning and critical events, and resolutions (approved, resumed, unfrozen, dequeued,
//                  stage_advanced, stepped_forward, and the end of the rollout)
//   pagerduty      critical events and approval_escalated, and resolutions
// A resolution (an event with `resolves` or `ends`) only clears what is open in Alertmanager and PagerDuty; it
// never opens anything there.
import { isResolution, severityAtLeast, type RolloutAlert } from './events';
import { ALERT_KINDS, ALERT_SEVERITIES, type AlertKind, type AlertRoute } from './kinds';

export type { AlertRoute } from './kinds';

export const ALERT_SINK_NAMES = ['log', 'webhook', 'slack', 'alertmanager', 'pagerduty'] as const;
export type AlertSinkName = (typeof ALERT_SINK_NAMES)[number];

/** Sinks that keep alerts open until resolved: they always receive resolutions, whatever the rules say. */
export const STATEFUL_SINKS: readonly string[] = ['alertmanager', 'pagerduty'];

/** Info-level kinds Slack does not get by default. */
export const SLACK_QUIET_INFO_KINDS: readonly AlertKind[] = ['check_breached'];

/** What routing looks at. */
export type RoutableAlert = Pick<RolloutAlert, 'kind' | 'severity' | 'ends' | 'resolves'>;

export function defaultRoute(sinkName: string, event: RoutableAlert): boolean {
  switch (sinkName) {
    case 'slack':
      return !(event.severity === 'info' && SLACK_QUIET_INFO_KINDS.includes(event.kind));
    case 'alertmanager':
      return isResolution(event) || severityAtLeast(event.severity, 'warning');
    case 'pagerduty':
      return isResolution(event) || event.severity === 'critical' || event.kind === 'approval_escalated';
    default:
      return true;
  }
}

/** Whether `sinkName` receives `event` under the plan's rules (the defaults when there are none). */
export function routes(
  rules: readonly AlertRoute[] | undefined,
  sinkName: string,
  event: RoutableAlert,
): boolean {
  const mine = (rules ?? []).filter((r) => r.sinks.includes(sinkName) || r.sinks.includes('*'));
  if (mine.length === 0) return defaultRoute(sinkName, event);
  // What a sink opened must close, even when the rules no longer select the closing event.
  if (STATEFUL_SINKS.includes(sinkName) && isResolution(event)) return true;
  return mine.some(
    (r) =>
      (r.kinds === undefined || r.kinds.includes(event.kind)) &&
      (r.minSeverity === undefined || severityAtLeast(event.severity, r.minSeverity)),
  );
}

export interface RouteProblem {
  path: string;
  message: string;
}

/** Checks routing rules as a plan carries them (`path` names where they are); returns every problem. */
export function validateAlertRoutes(value: unknown, path = 'alerts.routes'): RouteProblem[] {
  const problems: RouteProblem[] = [];
  const add = (p: string, message: string) => problems.push({ path: p, message });
  if (!Array.isArray(value)) {
    add(path, 'must be a list of rules ({ sinks, kinds?, minSeverity? })');
    return problems;
  }
  value.forEach((rule: unknown, i) => {
    const at = `${path}[${i}]`;
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
      add(at, 'must be an object with sinks, and optionally kinds and minSeverity');
      return;
    }
    const r = rule as Record<string, unknown>;
    for (const key of Object.keys(r)) {
      if (!['sinks', 'kinds', 'minSeverity'].includes(key)) add(`${at}.${key}`, `unknown field "${key}"`);
    }
    const known: readonly string[] = [...ALERT_SINK_NAMES, '*'];
    if (!Array.isArray(r.sinks) || r.sinks.length === 0) {
      add(`${at}.sinks`, `must be a non-empty list of sink names (${known.join(', ')})`);
    } else {
      r.sinks.forEach((s: unknown, j) => {
        if (typeof s !== 'string' || !known.includes(s)) {
          add(`${at}.sinks[${j}]`, `unknown sink ${JSON.stringify(s)}; known: ${known.join(', ')}`);
        }
      });
    }
    if (r.kinds !== undefined) {
      if (!Array.isArray(r.kinds) || r.kinds.length === 0) {
        add(`${at}.kinds`, 'must be a non-empty list of event kinds');
      } else {
        r.kinds.forEach((k: unknown, j) => {
          if (typeof k !== 'string' || !(ALERT_KINDS as readonly string[]).includes(k)) {
            add(
              `${at}.kinds[${j}]`,
              `unknown event kind ${JSON.stringify(k)}; known: ${ALERT_KINDS.join(', ')}`,
            );
          }
        });
      }
    }
    if (
      r.minSeverity !== undefined &&
      (typeof r.minSeverity !== 'string' || !(ALERT_SEVERITIES as readonly string[]).includes(r.minSeverity))
    ) {
      add(`${at}.minSeverity`, `must be ${ALERT_SEVERITIES.join(', ')}`);
    }
  });
  return problems;
}
