// The judge's one severity policy (workflows/judge-policy.ts): severity + how far the breach has got → what it does.
import { SEVERITY_POLICY, type BreachFacts } from '../../workflows/judge-policy';

const facts = (over: Partial<BreachFacts> = {}): BreachFacts => ({
  persisted: true,
  asks: false,
  rollbackAfterMs: 30 * 60_000,
  alerted: false,
  ...over,
});

describe('SEVERITY_POLICY', () => {
  it('critical rolls back at once, persisted or not, or asks a person with then: approval', () => {
    expect(SEVERITY_POLICY.critical(facts({ persisted: false }))).toBe('roll back');
    expect(SEVERITY_POLICY.critical(facts())).toBe('roll back');
    expect(SEVERITY_POLICY.critical(facts({ asks: true }))).toBe('ask');
  });

  it('high waits until the breach persisted, then rolls back or asks', () => {
    expect(SEVERITY_POLICY.high(facts({ persisted: false }))).toBe('wait');
    expect(SEVERITY_POLICY.high(facts({ persisted: false, asks: true }))).toBe('wait');
    expect(SEVERITY_POLICY.high(facts())).toBe('roll back');
    expect(SEVERITY_POLICY.high(facts({ asks: true }))).toBe('ask');
  });

  it('medium steps back once persisted, and rolls back if the breach outlasts rollbackAfter after that', () => {
    expect(SEVERITY_POLICY.medium(facts({ persisted: false }))).toBe('wait');
    expect(SEVERITY_POLICY.medium(facts())).toBe('step back');
    expect(SEVERITY_POLICY.medium(facts({ steppedBackFor: 0 }))).toBe('wait stepped back');
    expect(SEVERITY_POLICY.medium(facts({ steppedBackFor: 30 * 60_000 - 1 }))).toBe('wait stepped back');
    expect(SEVERITY_POLICY.medium(facts({ steppedBackFor: 30 * 60_000 }))).toBe('roll back after step-back');
  });

  it('low alerts once per breach once persisted, and never stops the rollout', () => {
    expect(SEVERITY_POLICY.low(facts({ persisted: false }))).toBe('wait');
    expect(SEVERITY_POLICY.low(facts())).toBe('alert');
    expect(SEVERITY_POLICY.low(facts({ alerted: true }))).toBe('nothing');
  });
});
