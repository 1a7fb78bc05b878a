// TrafficRouter over the local stack's weighted proxy. The stack serves one application, so the target
// only matters to other routers.
import type { RolloutTarget } from '../../workflows/types';
import type { TrafficRouter } from '../types';
import { LocalStackClient } from './control-client';

export class LocalTrafficRouter implements TrafficRouter {
  readonly type = 'local';

  constructor(private readonly client: LocalStackClient) {}

  async getWeight(_target: RolloutTarget): Promise<number> {
    return (await this.client.state()).weight;
  }

  async setWeight(_target: RolloutTarget, weight: number): Promise<void> {
    // Read first: a retried attempt that already landed changes nothing.
    if ((await this.client.state()).weight === weight) return;
    await this.client.setWeight(weight);
  }
}
