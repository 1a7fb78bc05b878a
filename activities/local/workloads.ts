// WorkloadManager over the local stack: the canary and stable "workloads" are demo-service instances the
// stack starts and stops. Images mean nothing locally; the version alone picks the behaviour (and faults).
import type { CanaryInfo, WorkloadManager, WorkloadPreflight } from '../types';
import { LocalStackClient } from './control-client';

export class LocalWorkloadManager implements WorkloadManager {
  readonly type = 'local';

  constructor(private readonly client: LocalStackClient) {}

  async ensureCanary(version: string, _image?: string): Promise<CanaryInfo> {
    // The stack keeps a canary already running this version, and answers once the new one listens.
    const state = await this.client.ensureCanary(version);
    return { stableVersion: state.stable.version };
  }

  /** Read-only: the stack answers, and which version stable runs (what ensureCanary would report). */
  async preflight(_version: string, _image?: string): Promise<WorkloadPreflight> {
    const state = await this.client.state();
    return { findings: [], stableVersion: state.stable.version };
  }

  async promoteStable(version: string, _image?: string): Promise<void> {
    await this.client.promote(version);
  }

  /**
   * The stack refuses to stop a canary that still has weight. A rollback has already set it to 0 through
   * the router; called on its own, this moves the traffic back to stable first rather than failing.
   */
  async scaleDownCanary(): Promise<void> {
    const state = await this.client.state();
    if (state.weight !== 0) await this.client.setWeight(0);
    if (state.canary) await this.client.deleteCanary();
  }

  /** After promotion stable runs the same version, so removing the canary is the same operation. */
  async cleanupCanary(): Promise<void> {
    await this.scaleDownCanary();
  }
}
