// The worker's log: the SDK's default logger, except that a rollout that rolled back is not reported as a
// failure with a stack trace. Such a rollout ends its workflow failed on purpose (a typed RolledBack failure, so the
// Web UI shows it apart from a promotion); for the worker that is an outcome, logged in one line.
import { DefaultLogger, type LogLevel, type LogMetadata } from '@temporalio/worker';
import { ROLLED_BACK_FAILURE, ROLLED_BACK_MESSAGE_PREFIX } from '../workflows/api';

export class RolloutLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const error = meta?.error as { type?: unknown; message?: unknown } | undefined;
    // The error crossed from the workflow thread by structured clone, which keeps an Error's message but not its
    // type: the failure's message (`rolled back: ...`, set by the workflow) identifies it then.
    const rolledBack =
      error?.type === ROLLED_BACK_FAILURE ||
      (typeof error?.message === 'string' && error.message.startsWith(ROLLED_BACK_MESSAGE_PREFIX));
    if (message === 'Workflow failed' && rolledBack) {
      const rest: LogMetadata = { ...meta };
      delete rest.error;
      super.log('INFO', 'Rollout rolled back', { ...rest, reason: String(error.message ?? '') });
      return;
    }
    super.log(level, message, meta);
  }
}
