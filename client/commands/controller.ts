// `canary controller`: runs the CanaryRollout controller (controller/) until SIGTERM or SIGINT. A CLI command rather
// than a worker flag: it is a client of Temporal (it starts, signals and queries rollouts, as the CLI does), not a
// worker, and it needs other Kubernetes rights than the worker (CanaryRollouts, Leases, Events), so it runs as its
// own Deployment with its own ServiceAccount from the same image. Loaded only when run: other commands stay light.
import type { Command } from 'commander';
import type { CliContext } from './context';
import { parseDurationOption } from './options';

interface ControllerCliOptions {
  namespace?: string;
  leaseNamespace?: string;
  leaseName?: string;
  identity?: string;
  leaseDuration: string;
  poll: string;
}

export function registerController(program: Command, ctx: CliContext): void {
  program
    .command('controller')
    .description(
      'run the CanaryRollout controller: start rollouts declared as objects, mirror them onto .status (Lease leader election)',
    )
    .option(
      '--namespace <namespace>',
      'watch CanaryRollouts in this namespace only (default: every namespace)',
    )
    .option('--lease-namespace <namespace>', "the Lease's namespace (default POD_NAMESPACE, else default)")
    .option('--lease-name <name>', 'the Lease replicas elect a leader with', 'temporal-canary-controller')
    .option(
      '--identity <name>',
      "this replica's name in the Lease (default POD_NAME, else host name and pid)",
    )
    .option('--lease-duration <duration>', 'how long a silent leader keeps the Lease', '15s')
    .option('--poll <duration>', 'how often running rollouts are looked at', '1s')
    .action(async (opts: ControllerCliOptions) => {
      const leaseDurationMs = parseDurationOption('--lease-duration', opts.leaseDuration);
      const pollMs = parseDurationOption('--poll', opts.poll);
      const { loadKubeConfig } = await import('../../activities/kube/client');
      const { startController } = await import('../../controller/main');
      const kubeConfig = loadKubeConfig({
        ...(process.env.CANARY_KUBECONFIG ? { kubeconfig: process.env.CANARY_KUBECONFIG } : {}),
        ...(process.env.CANARY_KUBE_CONTEXT ? { context: process.env.CANARY_KUBE_CONTEXT } : {}),
      });
      const rollouts = await ctx.connect();
      const controller = startController({
        kubeConfig,
        rollouts,
        ...(opts.namespace ? { namespace: opts.namespace } : {}),
        ...(opts.leaseNamespace ? { leaseNamespace: opts.leaseNamespace } : {}),
        ...(opts.leaseName ? { leaseName: opts.leaseName } : {}),
        ...(opts.identity ? { identity: opts.identity } : {}),
        leaseDurationMs,
        pollMs,
      });
      ctx.err(`canary controller: watching CanaryRollouts${opts.namespace ? ` in ${opts.namespace}` : ''}`);
      await new Promise<void>((resolve) => {
        const done = () => resolve();
        process.once('SIGTERM', done);
        process.once('SIGINT', done);
      });
      await controller.stop();
    });
}
