// A workflow that issues different commands than the recorded ones: proves the replay check can fail.
import { sleep } from '@temporalio/workflow';

export async function canaryRollout(): Promise<void> {
  await sleep('1 minute');
}
