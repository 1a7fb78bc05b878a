// Checks judged as one (AnalysisCheck.roundGroup), as the original judge judged a short-form plan: one round of
// the group is a breach when any member crosses its abort band, has no evidence when none does and any member has
// none, and passes otherwise; the group's streaks and limits are counted once, by the rules of judge-rules.ts
// run over that combined observation, with the first member's abort and onNoData. A failed or rejected query is
// missing evidence in a group, as an unreadable metric was to the original judge.
import type { AnalysisCheck } from './analysis-model';
import { observe, type Observation } from './judge-observe';
import { judgeObservation, stepOf, verdictFor, type CheckStep } from './judge-rules';
import type { CheckState, CheckVerdict, JudgeOptions, RoundMeasurement } from './judge-types';

/** A group's step: one set of streaks and actions, and each member's verdict. */
export interface GroupStep extends Omit<CheckStep, 'verdict'> {
  verdicts: CheckVerdict[];
  /** The group's own notes (the members' notes that decided, and its streaks). */
  note: string;
}

export function judgeGroup(
  group: string,
  members: readonly AnalysisCheck[],
  measurements: Readonly<Record<string, RoundMeasurement | undefined>>,
  at: number,
  prev: CheckState | undefined,
  options: JudgeOptions,
): GroupStep {
  const seen = members.map((c) => asOutage(observe(c, measurements[c.name], options)));
  const lead: AnalysisCheck = { ...members[0], name: group };
  const r = judgeObservation(lead, groupObservation(members, seen), at, prev, options);
  const verdicts = members.map((c, i) => verdictFor(c, seen[i], [seen[i].note], measurements[c.name]));
  return { ...stepOf(r), verdicts, note: r.notes.join('; ') };
}

/** The group's checks, in the order they first appear, each group once. */
export function groupsOf(checks: readonly AnalysisCheck[]): Map<string, AnalysisCheck[]> {
  const groups = new Map<string, AnalysisCheck[]>();
  for (const check of checks) {
    if (check.roundGroup === undefined) continue;
    const members = groups.get(check.roundGroup) ?? [];
    members.push(check);
    groups.set(check.roundGroup, members);
  }
  return groups;
}

function asOutage(obs: Observation): Observation {
  return obs.kind === 'rejected' ? { kind: 'query_failed', note: obs.note } : obs;
}

/** Any member breaching makes a breach; else any without evidence makes none; else the weakest band. */
function groupObservation(members: readonly AnalysisCheck[], seen: readonly Observation[]): Observation {
  const which = (keep: (o: Observation) => boolean) =>
    seen.flatMap((o, i) => (keep(o) ? [`${members[i].name}: ${o.note}`] : [])).join('; ');
  const inBand = (band: string) => (o: Observation) => o.kind === 'evidence' && o.band === band;
  if (seen.some(inBand('abort'))) {
    return { kind: 'evidence', band: 'abort', outcome: 'breach', note: which(inBand('abort')) };
  }
  const missing = (o: Observation) => o.kind !== 'evidence';
  if (seen.some(missing)) {
    const tooLittle = seen
      .filter(missing)
      .every((o) => o.kind === 'no_evidence' && o.outcome === 'inconclusive');
    return { kind: 'no_evidence', outcome: tooLittle ? 'inconclusive' : 'no_data', note: which(missing) };
  }
  if (seen.some(inBand('between'))) {
    return { kind: 'evidence', band: 'between', outcome: 'hold', note: which(inBand('between')) };
  }
  return { kind: 'evidence', band: 'success', outcome: 'pass', note: `every check ok (${members.length})` };
}
