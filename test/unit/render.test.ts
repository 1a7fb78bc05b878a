import {
  formatTime,
  livePlanTimeLeftMs,
  liveStageTimeLeftMs,
  progressBar,
  progressLines,
  renderList,
  renderStatus,
} from '../../client/render';
import type { RolloutSummary } from '../../client/index';
import type { RolloutStatus, StageView } from '../../workflows/types';

const H = 3_600_000;
const M = 60_000;
const NOW = new Date('2025-03-01T12:30:00.000Z');
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

function stages(current: number, state: 'done' | 'current' | 'pending' = 'current'): StageView[] {
  const plan: Array<[number, number, 'auto' | 'approval']> = [
    [5, 1 * H, 'auto'],
    [10, 3 * H, 'auto'],
    [25, 20 * H, 'approval'],
    [50, 24 * H, 'auto'],
    [100, 0, 'auto'],
  ];
  return plan.map(([weight, holdMs, gate], i) => ({
    stage: i + 1,
    weight,
    holdMs,
    gate,
    state: i + 1 < current ? 'done' : i + 1 === current ? state : 'pending',
  }));
}

/** Stage 2 (10 %, 3 h hold) entered at 11:00; the query was answered at 12:29 (workflow time), it is now 12:30. */
function progressing(): RolloutStatus {
  return {
    workflowId: 'canary-prod-checkout',
    app: 'checkout',
    namespace: 'prod',
    version: '1.4.2',
    image: 'registry.example.com/checkout:1.4.2',
    planName: 'default',
    requestedBy: 'alice',
    phase: 'progressing',
    stage: 2,
    stageCount: 5,
    weight: 10,
    stageStartedAt: '2025-03-01T11:00:00.000Z',
    stageEndsAt: '2025-03-01T14:00:00.000Z',
    stageTimeLeftMs: 1 * H + 31 * M,
    planTimeLeftMs: 45 * H + 31 * M,
    analyses: [
      {
        stage: 1,
        weight: 5,
        at: '2025-03-01T10:59:00.000Z',
        verdict: 'pass',
        checks: [
          { name: 'error-rate', value: 0.12, outcome: 'pass' },
          { name: 'latency-p95', value: 231.456789, outcome: 'pass' },
        ],
      },
      {
        stage: 2,
        weight: 10,
        at: '2025-03-01T12:29:00.000Z',
        verdict: 'fail',
        checks: [
          { name: 'error-rate', value: 1.7, outcome: 'fail' },
          { name: 'latency-p95', value: null, outcome: 'no_data', error: 'prometheus: timeout' },
        ],
      },
    ],
    lastVerdict: 'fail',
    approvals: [],
    stages: stages(2),
    run: 1,
  };
}

describe('progressBar', () => {
  it('draws filled and empty cells and a percentage', () => {
    expect(progressBar(0.6, 10)).toBe('[██████░░░░]  60%');
    expect(progressBar(0, 4)).toBe('[░░░░]   0%');
    expect(progressBar(1.5, 4)).toBe('[████] 100%');
    expect(progressBar(Number.NaN, 4)).toBe('[░░░░]   0%');
    // A started hold shows a sliver; an unfinished one is never full.
    expect(progressBar(0.001, 10)).toBe('[█░░░░░░░░░]   0%');
    expect(progressBar(0.999, 10)).toBe('[█████████░]  99%');
  });
});

describe('renderStatus', () => {
  it('shows the rollout, stage, weight and both progress bars with the time left', () => {
    const text = renderStatus(progressing(), NOW);
    expect(text).toContain('Rollout prod/checkout → 1.4.2');
    expect(text).toMatch(/Stage\s+2\/5\n/);
    expect(text).toMatch(/Weight\s+10% canary/);
    expect(text).toMatch(/Phase\s+progressing/);
    expect(text).toContain('Requested by  alice');
    // 1h30m of 3h served (corrected with stageEndsAt: the query is a minute old).
    expect(text).toContain(`Stage hold    ${progressBar(0.5)}  1h30m left of 3h`);
    // 2h30m of 48h of holds served.
    expect(text).toContain(`Plan hold     ${progressBar(2.5 / 48)}  45h30m left of 48h (+ approval waits)`);
    expect(text).toContain('✓ 5%  ▶ 10%  · 25% (approval)  · 50%  · 100%');
  });

  it('lists the latest analyses with verdicts and check values', () => {
    const text = renderStatus(progressing(), NOW);
    expect(text).toContain('Analyses (2)');
    expect(text).toMatch(/10:59:00Z {2}stage 1 {3}5% {2}pass +error-rate=0\.12 ok, latency-p95=231\.457 ok/);
    expect(text).toContain('error-rate=1.7 FAIL, latency-p95=no data NO DATA (error: prometheus: timeout)');
    expect(text).toMatch(/Last verdict\s+fail/);
    const few = renderStatus(progressing(), NOW, { maxAnalyses: 1 });
    expect(few).toContain('Analyses (last 1 of 2)');
    expect(few).not.toContain('10:59:00Z');
  });

  it('explains a waiting gate and gives the command that approves it', () => {
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'waiting_approval',
      stage: 3,
      weight: 10,
      stageStartedAt: undefined,
      stageEndsAt: undefined,
      stageTimeLeftMs: 20 * H,
      planTimeLeftMs: 44 * H,
      gate: {
        stage: 3,
        since: '2025-03-01T12:00:00.000Z',
        timeoutAt: '2025-03-01T13:00:00.000Z',
        onTimeout: 'abort',
      },
      stages: stages(3),
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain(
      'Waiting for approval to enter stage 3/5 (25%) since 12:00:00Z (30m ago); times out in 30m, then aborts',
    );
    expect(text).toContain('Approve: canary approve prod/checkout --stage 3');
    expect(text).toContain('canary abort prod/checkout --reason');
    expect(text).toContain('20h hold starts after approval');
  });

  it('explains a waiting promotion gate: the final hold is served, promotion waits for approval', () => {
    // At the promotion gate the final stage has served its hold (done), as the workflow reports it.
    const final = stages(6).map((st) => (st.stage === 5 ? { ...st, holdMs: 2 * H } : st));
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'waiting_approval',
      stage: 5,
      weight: 100,
      stageStartedAt: undefined,
      stageEndsAt: undefined,
      stageTimeLeftMs: 0,
      planTimeLeftMs: 0,
      gate: { stage: 5, promotion: true, since: '2025-03-01T12:00:00.000Z' },
      stages: final,
      promotionGate: 'approval',
      approvals: [
        { stage: 3, by: 'bob', at: '2025-03-01T01:00:00.000Z', kind: 'approved' },
        { stage: 5, by: 'carol', at: '2025-03-01T12:10:00.000Z', kind: 'approved', promotion: true },
      ],
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain(
      'Waiting for approval to promote 1.4.2 (stage 5/5 served its hold) since 12:00:00Z (30m ago)',
    );
    expect(text).toContain('Approve: canary approve prod/checkout --stage 5');
    expect(text).toContain('2h served; promotion waits for approval');
    expect(text).toContain('✓ 50%  ✓ 100%  ▶ promotion (approval)');
    expect(text).toContain('stage 3  approval gate approved by bob');
    expect(text).toContain('stage 5  promotion approved by carol');
    const lines = progressLines({ ...s, phase: 'progressing', gate: undefined }, s, NOW);
    expect(lines).toContain(
      '[12:30:00Z] the promotion (after stage 5) waits for approval: canary approve prod/checkout --stage 5',
    );
    expect(renderStatus({ ...s, phase: 'promoted', gate: undefined }, NOW)).toContain(
      '✓ promotion (approval)',
    );
  });

  it('shows pause information', () => {
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'paused',
      stageEndsAt: undefined,
      pausedSince: '2025-03-01T12:10:00.000Z',
      pausedBy: 'bob',
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain('Paused since 12:10:00Z (20m ago) by bob');
    expect(text).toContain('canary resume prod/checkout');
    expect(text).toContain('1h31m left of 3h (paused)');
  });

  it('explains a pause for drift and what resume will do', () => {
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'paused',
      stageEndsAt: undefined,
      pausedSince: '2025-03-01T12:10:00.000Z',
      pausedBy: 'drift detection',
      pauseReason: 'the canary weight is 40%, not the 10% this rollout set',
      drift: { expected: 10, found: 40, at: '2025-03-01T12:10:00.000Z' },
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain(
      'Paused since 12:10:00Z (20m ago) by drift detection: the canary weight is 40%, not the 10% this rollout set',
    );
    expect(text).toContain(
      'Someone changed the traffic weights: the canary had 40%, the rollout had set 10% (seen 12:10:00Z).',
    );
    expect(text).toContain('Resume (puts 10% back): canary resume prod/checkout');
    expect(text).toContain('Or roll back:              canary abort prod/checkout --reason "why"');
  });

  it('shows the target, what the router achieved, and a rollback step that keeps failing', () => {
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'rolling_back',
      target: 'prod/checkout, Deployment checkout (canary checkout-canary), via replica ratio',
      achievedWeight: 25,
      routingNote: '10% requested; 1 canary and 3 stable replicas (of 4) give 25%',
      rollbackReason: 'aborted by bob: spike',
      retrying: {
        step: 'send traffic back to stable',
        attempts: 2,
        error: 'the worker may not patch deployments/scale in namespace "prod"',
        since: '2025-03-01T12:28:00.000Z',
      },
      capacityNote: 'stable had 1 of 4 replicas; scaled back to 4, available 4',
    };
    const text = renderStatus(s, NOW);
    expect(text).toMatch(
      /Target +prod\/checkout, Deployment checkout \(canary checkout-canary\), via replica ratio/,
    );
    expect(text).toMatch(/Weight +10% canary \(the router achieves 25%\)/);
    expect(text).toMatch(/Routing +10% requested; 1 canary and 3 stable replicas \(of 4\) give 25%/);
    expect(text).toContain(
      'Retrying "send traffic back to stable" since 12:28:00Z (2 rounds of attempts): the worker may not patch deployments/scale in namespace "prod"',
    );
    expect(text).toContain('Stable capacity: stable had 1 of 4 replicas; scaled back to 4, available 4');
  });

  it('shows what the full analysis form judged: band, severity, stable, the step-back and why', () => {
    const s: RolloutStatus = {
      ...progressing(),
      weight: 5,
      steppedBack: { stageWeight: 10, toWeight: 5, since: '2025-03-01T12:20:00.000Z' },
      analyses: [
        {
          stage: 2,
          weight: 5,
          at: '2025-03-01T12:29:00.000Z',
          verdict: 'fail',
          checks: [
            {
              name: 'p95-vs-stable',
              value: 240,
              baseline: 150,
              outcome: 'fail',
              judged: 'breach',
              band: 'abort',
              severity: 'medium',
              note: 'ratio 1.6 > abort ratio max 1.5',
            },
            { name: 'errors', value: null, outcome: 'no_data', judged: 'query_failed', note: 'unreachable' },
          ],
          action: 'step-back',
          reasons: ['p95-vs-stable: ratio 1.6 > abort ratio max 1.5 (medium): step back'],
        },
      ],
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain(
      'p95-vs-stable=240 vs stable 150 BREACH abort/medium, errors=no data QUERY FAILED',
    );
    expect(text).toContain(
      "Stepped back to 5% (the stage's 10%) since 12:20:00Z after a medium breach; it goes forward again after a healthy period, or rolls back if the breach persists",
    );
    expect(text).toContain(
      'Last analysis: step-back: p95-vs-stable: ratio 1.6 > abort ratio max 1.5 (medium): step back',
    );
  });

  it('shows the rollback reason and how far the plan got', () => {
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'rolled_back',
      weight: 0,
      stageEndsAt: undefined,
      stageTimeLeftMs: 0,
      planTimeLeftMs: 0,
      rollbackReason: 'analysis failed 1 time(s) in a row at 10%: error-rate 1.7 > max 1',
      stages: stages(2, 'pending'),
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain(
      'Rollback reason: analysis failed 1 time(s) in a row at 10%: error-rate 1.7 > max 1',
    );
    expect(text).toContain(`Plan hold     ${progressBar(1 / 48)}  stopped`);
    expect(text).not.toContain('Stage hold');
    expect(text).not.toContain('left of');
  });

  it('shows the approvals log', () => {
    const s: RolloutStatus = {
      ...progressing(),
      approvals: [
        {
          stage: 3,
          by: 'carol',
          at: '2025-03-01T12:05:00.000Z',
          kind: 'approved',
          comment: 'dashboards look fine',
        },
        { stage: 4, by: 'gate timeout', at: '2025-02-28T23:00:00.000Z', kind: 'timeout-proceed' },
      ],
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain('\nApprovals, gate time-outs\n');
    expect(text).toContain('12:05:00Z  stage 3  approval gate approved by carol  "dashboards look fine"');
    expect(text).toContain(
      '2025-02-28 23:00:00Z  stage 4  approval gate timed out: proceeded without approval',
    );
    const promoted = renderStatus(
      {
        ...progressing(),
        approvals: [{ stage: 2, by: 'erin', at: '2025-03-01T12:06:00.000Z', kind: 'promote' }],
      },
      NOW,
    );
    expect(promoted).toContain('\nPromotion requests\n');
    expect(promoted).toContain('stage 2  promotion requested by erin (remaining stages skipped)');
  });

  it('shows stages skipped by a promotion and the stage a rollback happened in', () => {
    const base = progressing();
    const stages = (states: RolloutStatus['stages'][number]['state'][]) =>
      base.stages.map((st, i) => ({ ...st, state: states[i] }));
    const skipped = renderStatus(
      { ...base, phase: 'promoted', stages: stages(['done', 'done', 'skipped', 'skipped', 'done']) },
      NOW,
    );
    expect(skipped).toMatch(
      /Stages\s+✓ 5% {2}✓ 10% {2}↷ 25% \(approval\) skipped {2}↷ 50% skipped {2}✓ 100%/,
    );
    const failed = renderStatus(
      { ...base, phase: 'rolled_back', stages: stages(['done', 'failed', 'pending', 'pending', 'pending']) },
      NOW,
    );
    expect(failed).toMatch(/Stages\s+✓ 5% {2}✗ 10% failed {2}· 25% \(approval\) {2}· 50% {2}· 100%/);
  });

  it('says when a stage waits for evidence, and when a person must decide about missing evidence', () => {
    const base = progressing();
    const waiting = renderStatus(
      {
        ...base,
        evidenceWait: {
          since: '2025-03-01T12:00:00.000Z',
          note: 'the hold is served, but stage 2 advances only on a passing analysis (the latest analysis was inconclusive)',
        },
      },
      NOW,
    );
    expect(waiting).toContain(
      'Waiting for evidence since 12:00:00Z: the hold is served, but stage 2 advances only on a passing analysis (the latest analysis was inconclusive)',
    );
    const asking = renderStatus(
      {
        ...base,
        phase: 'waiting_approval',
        evidenceQuestion: {
          since: '2025-03-01T12:00:00.000Z',
          checks: ['gpu'],
          reasons: ['gpu: no evidence for 3 rounds in a row: a person decides'],
        },
      },
      NOW,
      { cliName: 'npx canary' },
    );
    expect(asking).toContain('gpu: no evidence for 3 rounds in a row: a person decides');
    expect(asking).toContain('Go on without that evidence: npx canary approve prod/checkout --stage 2');
    expect(asking).toContain('Or roll back:                npx canary abort prod/checkout --reason "why"');
    // A breach that asks (abort.then: approval): approving accepts the breach.
    const breach = renderStatus(
      {
        ...base,
        phase: 'waiting_approval',
        evidenceQuestion: {
          since: '2025-03-01T12:00:00.000Z',
          checks: ['conversion'],
          breaches: ['conversion'],
          reasons: ['conversion: 8: 8 < abort min 10 (high): a person decides'],
        },
      },
      NOW,
      { cliName: 'npx canary' },
    );
    expect(breach).toContain('Accept the breach, go on:    npx canary approve prod/checkout --stage 2');
    expect(breach).not.toContain('without that evidence');
  });

  it('counts every analysis that ran, not only those kept', () => {
    const base = progressing();
    const text = renderStatus({ ...base, analysesRun: 37 }, NOW, { maxAnalyses: 1 });
    expect(text).toContain('Analyses (last 1 of 37)');
  });

  it('marks a promoted rollout as done', () => {
    const s: RolloutStatus = {
      ...progressing(),
      phase: 'promoted',
      stage: 5,
      weight: 0,
      stageEndsAt: undefined,
      stageTimeLeftMs: 0,
      planTimeLeftMs: 0,
      promotedAt: '2025-03-01T12:20:00.000Z',
      stages: stages(6),
    };
    const text = renderStatus(s, NOW);
    expect(text).toContain(`Plan hold     ${progressBar(1)}  done`);
    expect(text).toMatch(/Promoted at\s+12:20:00Z/);
    // The way back is a rollout of the previous version, with this rollout's plan and target.
    expect(renderStatus({ ...s, stableVersion: 'v1.4.0' }, NOW, { cliName: 'npx canary' })).toContain(
      `\nGo back: npx canary start --like ${s.namespace}/${s.app} --version v1.4.0   (this plan and target, v1.4.0 as the canary)`,
    );
    expect(text).not.toContain('Go back'); // the previous version unknown: no command with a placeholder
  });

  it('uses no ANSI escapes unless colour is asked for', () => {
    expect(renderStatus(progressing(), NOW)).not.toMatch(ANSI);
    expect(renderStatus(progressing(), NOW, { color: false })).not.toMatch(ANSI);
    expect(renderStatus(progressing(), NOW, { color: true })).toMatch(ANSI);
  });
});

describe('live time left', () => {
  it('corrects the query-time values with stageEndsAt', () => {
    expect(liveStageTimeLeftMs(progressing(), NOW)).toBe(1 * H + 30 * M);
    expect(livePlanTimeLeftMs(progressing(), NOW)).toBe(45 * H + 30 * M);
    const later = new Date('2025-03-01T15:00:00.000Z');
    expect(liveStageTimeLeftMs(progressing(), later)).toBe(0);
  });
});

describe('progressLines', () => {
  it('reports the first poll, then only what changed', () => {
    const first = progressLines(undefined, progressing(), NOW);
    expect(first).toEqual([
      '[12:30:00Z] prod/checkout 1.4.2: progressing, stage 2/5, canary at 10%, 45h31m of holds left',
    ]);
    expect(progressLines(progressing(), progressing(), NOW)).toEqual([]);

    const gated: RolloutStatus = {
      ...progressing(),
      phase: 'waiting_approval',
      stage: 3,
      gate: { stage: 3, since: '2025-03-01T12:30:00.000Z' },
      analyses: [
        ...progressing().analyses,
        { stage: 2, weight: 10, at: '2025-03-01T12:30:00.000Z', verdict: 'pass', checks: [] },
      ],
    };
    // Stage 3 waits at its gate with the canary still at stage 2's 10 %: no "stage 3: canary at 10%" line.
    expect(progressLines(progressing(), gated, NOW)).toEqual([
      '[12:30:00Z] analysis at 10%: pass ((no checks))',
      '[12:30:00Z] stage 3 waits for approval: canary approve prod/checkout --stage 3',
    ]);

    const rolled: RolloutStatus = {
      ...gated,
      phase: 'rolled_back',
      rollbackReason: 'aborted by bob: bad',
      gate: undefined,
    };
    expect(progressLines(gated, rolled, NOW)).toEqual(['[12:30:00Z] rolled back: aborted by bob: bad']);
    // Once the gate passed and the traffic moved, the stage is told.
    const entered: RolloutStatus = {
      ...gated,
      phase: 'progressing',
      gate: undefined,
      weight: 25,
      stageStartedAt: '2025-03-01T12:30:00.000Z',
    };
    expect(progressLines(gated, entered, NOW)[0]).toBe('[12:30:00Z] stage 3/5: canary at 25%, holding 20h');
  });
});

describe('renderList', () => {
  it('renders aligned rows and a placeholder when empty', () => {
    const rows: RolloutSummary[] = [
      {
        workflowId: 'canary-prod-checkout',
        runId: 'r1',
        app: 'checkout',
        namespace: 'prod',
        version: '1.4.2',
        phase: 'progressing',
        stage: 2,
        weight: 10,
        status: 'RUNNING',
        startTime: new Date('2025-03-01T11:00:00.000Z'),
      },
      {
        workflowId: 'canary-staging-cart',
        runId: 'r2',
        app: 'cart',
        status: 'TERMINATED',
        startTime: new Date('2025-02-27T08:00:00.000Z'),
      },
    ];
    const lines = renderList(rows, NOW).split('\n');
    expect(lines[0]).toMatch(/^WORKFLOW ID\s+APP\s+VERSION\s+PHASE\s+STAGE\s+WEIGHT\s+STATUS\s+STARTED$/);
    expect(lines[1]).toMatch(
      /^canary-prod-checkout\s+prod\/checkout\s+1\.4\.2\s+progressing\s+2\s+10%\s+RUNNING\s+11:00:00Z$/,
    );
    expect(lines[2]).toMatch(
      /^canary-staging-cart\s+cart\s+-\s+-\s+-\s+-\s+TERMINATED\s+2025-02-27 08:00:00Z$/,
    );
    // Columns line up.
    expect(lines[1].indexOf('prod/checkout')).toBe(lines[0].indexOf('APP'));
    expect(renderList([], NOW)).toBe('No rollouts found.');
    expect(renderList(rows, NOW)).not.toMatch(ANSI);
  });
});

describe('formatTime', () => {
  it('omits the date on the same UTC day', () => {
    expect(formatTime('2025-03-01T01:02:03.000Z', NOW)).toBe('01:02:03Z');
    expect(formatTime('2025-02-01T01:02:03.000Z', NOW)).toBe('2025-02-01 01:02:03Z');
    expect(formatTime('not a date', NOW)).toBe('not a date');
  });
});
