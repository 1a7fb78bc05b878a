// Where the original judge used to live; kept so that imports keep working. The judge itself is in
// legacy-judge.ts (what the replay of recorded short-form rollouts needs), its message format in
// judge-short-form.ts (shared with the full-form rules that short-form checks convert into).
export { judge, judgeCheck, type Measurement } from './legacy-judge';
export { describeResults } from './judge-short-form';
