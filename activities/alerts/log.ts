// Writes each alert as one JSON line: to stdout, or appended to a file (handy for tests and for tailing).
import { appendFile } from 'node:fs/promises';
import type { AlertEvent, AlertSink, RolloutAlertSink } from '../types';
import type { RolloutAlert } from '../../workflows/alerts/events';

export class LogAlertSink implements AlertSink, RolloutAlertSink {
  readonly type = 'log';
  readonly name = 'log';

  /** @param path file to append to; absent means stdout. */
  constructor(private readonly path?: string) {}

  /** A rollout event is a superset of the legacy event: readers of the log see the same fields, and more. */
  deliver(event: RolloutAlert): Promise<void> {
    return this.send(event);
  }

  async send(event: AlertEvent): Promise<void> {
    const line = JSON.stringify(event) + '\n';
    if (this.path) {
      await appendFile(this.path, line, 'utf8');
      return;
    }
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(line, (err) => (err ? reject(err) : resolve())),
    );
  }
}
