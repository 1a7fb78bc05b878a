// What every Kubernetes router's setWeight promises the rollback's capacity check (WeightOptions.writeAfter), checked
// on the real API server by each router's test: nothing is written before the gate settles, the shift completes once
// it does, and nothing at all is written when it fails.
import type { TrafficRouter } from '../../activities/types';

/**
 * `router` is set up and at weight `from` (> 0); `version` reads the resourceVersion of the object its setWeight
 * writes. Leaves the router at `from`.
 */
export async function expectGatedShift(
  router: TrafficRouter,
  from: number,
  version: () => Promise<string | undefined>,
): Promise<void> {
  expect(router.writesAfterGate).toBe(true);
  let open!: (changed: boolean) => void;
  const gate = new Promise<boolean>((resolve) => (open = resolve));
  const before = await version();
  const shift = router.setWeight(0, undefined, { writeAfter: gate });
  await new Promise((res) => setTimeout(res, 200));
  expect(await version()).toBe(before);
  open(false);
  await expect(shift).resolves.toEqual({ previous: from, changed: true });
  expect(await router.getWeight()).toBe(0);

  await router.setWeight(from);
  const unchanged = await version();
  const failed = Promise.reject(new Error('capacity check failed'));
  failed.catch(() => undefined); // the router awaits it after its read
  await expect(router.setWeight(0, undefined, { writeAfter: failed })).rejects.toThrow(
    'capacity check failed',
  );
  expect(await version()).toBe(unchanged);
  expect(await router.getWeight()).toBe(from);
}
