// A secret an alert sink needs (a webhook URL, an HMAC key, a routing key, a token), from the worker's environment
// or from a mounted file. A file is read again at each delivery, so a rotated Kubernetes Secret takes effect
// without a restart; the factory reads it once at start too, so a missing file fails the worker at once.
import * as fs from 'node:fs';

export interface Secret {
  /** The variable it came from (CANARY_ALERT_SLACK_URL or CANARY_ALERT_SLACK_URL_FILE): what errors may name. */
  readonly variable: string;
  /** The current value; throws an error naming the variable (never the value) when a file cannot be read. */
  value(): string;
}

export function literalSecret(variable: string, value: string): Secret {
  return { variable, value: () => value };
}

export function fileSecret(variable: string, file: string): Secret {
  return {
    variable,
    value: () => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new Error(
          `${variable}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : (code ?? 'error')})`,
        );
      }
      // Secrets are mounted with a trailing newline more often than not.
      const value = text.trim();
      if (value === '') throw new Error(`${variable}: ${file} is empty`);
      return value;
    },
  };
}
