// TrafficRouter over the local stack's weighted proxy. The stack serves one application and routing needs no
// objects of its own, so setup and teardown have nothing to create or remove.
import type { RoutingVersions, TrafficRouter, WeightChange, WeightVerification } from '../types';
import { LocalStackClient } from './control-client';

export class LocalTrafficRouter implements TrafficRouter {
  readonly type = 'local';

  constructor(private readonly client: LocalStackClient) {}

  async setup(_versions: RoutingVersions): Promise<void> {}

  async getWeight(): Promise<number> {
    return (await this.client.state()).weight;
  }

  async setWeight(weight: number): Promise<WeightChange> {
    // Read first: a retried attempt that already landed changes nothing.
    const previous = (await this.client.state()).weight;
    if (previous === weight) return { previous, changed: false };
    await this.client.setWeight(weight);
    return { previous, changed: true };
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    const live = await this.getWeight();
    return live === weight
      ? { verified: true, weight: live }
      : { verified: false, weight: live, reason: `the proxy sends ${live}% to the canary` };
  }

  async teardown(): Promise<void> {
    if ((await this.client.state()).weight !== 0) await this.client.setWeight(0);
  }
}
