// Loaded once per worker, before the rollouts it runs (worker/bundle.ts preloads it into the workflow sandbox).
//
// The SDK records, for every promise a workflow creates, the stack it was created from (for the Web UI's Stack
// Trace tab): a captured stack of Error.stackTraceLimit frames, each mapped through the bundle's source map. With
// 1,000 rollouts that was a quarter of the worker's CPU per analysis round (`npm run bench:scale`: 15.6 → 11.8 ms).
// Inside the workflow sandbox (its own Error, not the worker's) stacks are cut to WORKFLOW_STACK_FRAMES frames; errors
// a rollout raises keep their messages, and failures from activities keep the stacks they carry.
// `CANARY_WORKFLOW_STACK_TRACES=full` at bundle time leaves this module out (worker/bundle.ts).
export const WORKFLOW_STACK_FRAMES = 0;

Error.stackTraceLimit = WORKFLOW_STACK_FRAMES;
