// Writes each alert as one JSON line: to stdout, or appended to a file (handy for tests and for tailing).
import { appendFile } from 'node:fs/promises';
import type { AlertEvent, AlertSink } from '../types';

export class LogAlertSink implements AlertSink {
  readonly type = 'log';

  /** @param path file to append to; absent means stdout. */
  constructor(private readonly path?: string) {}

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
