// Posts each alert to a Slack incoming webhook as a Block Kit message: what happened, the rollout (app, version,
// stage, weight, last verdict), a link to it in the Temporal UI, and the exact commands to approve or abort.
// Slack cannot deduplicate: a worker that crashes after Slack accepted a message, before Temporal recorded the
// activity's completion, sends it again on retry (at-least-once). The incoming-webhook URL is the credential.
import type { RolloutAlertSink } from '../types';
import {
  DEFAULT_SINK_CONTEXT,
  kindText,
  rolloutName,
  stageText,
  verdictText,
  withLinks,
  type SinkContext,
} from './context';
import type { RolloutAlert } from '../../workflows/alerts/events';
import { send } from './http';
import type { Secret } from './secrets';

export interface SlackText {
  type: 'plain_text' | 'mrkdwn';
  text: string;
  emoji?: boolean;
}

export type SlackBlock =
  | { type: 'header'; text: SlackText }
  | { type: 'section'; text?: SlackText; fields?: SlackText[] }
  | { type: 'context'; elements: SlackText[] }
  | { type: 'divider' };

export interface SlackMessage {
  /** The notification's text, and what clients without blocks show. */
  text: string;
  blocks: SlackBlock[];
}

const EMOJI: Record<string, string> = {
  critical: ':rotating_light:',
  warning: ':warning:',
  info: ':information_source:',
};

/** Slack's mrkdwn control characters (also inside code blocks). */
export const escapeMrkdwn = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const clip = (s: string, n: number): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

export function slackMessage(event: RolloutAlert, ctx: SinkContext = DEFAULT_SINK_CONTEXT): SlackMessage {
  const e = withLinks(event, ctx);
  const emoji = e.kind === 'promoted' ? ':white_check_mark:' : EMOJI[e.severity];
  const title = `${emoji} ${e.target.app} ${e.version}: ${kindText(e)}`;
  const field = (label: string, value: string): SlackText => ({
    type: 'mrkdwn',
    text: clip(`*${label}*\n${escapeMrkdwn(value)}`, 2000),
  });
  const fields: SlackText[] = [field('App', rolloutName(e)), field('Version', e.version)];
  const stage = stageText(e);
  if (stage) fields.push(field('Stage', stage));
  if (e.weight !== undefined) fields.push(field('Weight', `${e.weight}%`));
  const verdict = verdictText(e);
  fields.push(field('Last verdict', verdict ?? 'none yet'));
  fields.push(
    field('Severity', e.check?.severity ? `${e.severity} (check: ${e.check.severity})` : e.severity),
  );
  if (e.check) fields.push(field('Check', e.check.name));
  if (e.reason) fields.push(field('Reason', e.reason));
  if (e.by) fields.push(field('By', e.by));

  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(title, 150), emoji: true } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(escapeMrkdwn(e.message), 3000) } },
    { type: 'section', fields: fields.slice(0, 10) },
  ];
  if (e.uiUrl) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `<${e.uiUrl.replace(/[|>]/g, encodeURIComponent)}|Open the rollout in the Temporal UI>`,
      },
    });
  }
  const commands = [e.commands.approve, e.commands.abort, e.commands.resume, e.commands.status].filter(
    (c): c is string => c !== undefined,
  );
  blocks.push({
    type: 'section',
    text: { type: 'mrkdwn', text: `*Commands*\n\`\`\`${escapeMrkdwn(commands.join('\n'))}\`\`\`` },
  });
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: escapeMrkdwn(`${e.at} · event ${e.id}`) }],
  });
  return { text: clip(`${e.target.app} ${e.version}: ${e.message}`, 3000), blocks };
}

export class SlackAlertSink implements RolloutAlertSink {
  readonly name = 'slack';

  constructor(
    private readonly url: Secret,
    private readonly ctx: SinkContext = DEFAULT_SINK_CONTEXT,
  ) {}

  async deliver(event: RolloutAlert): Promise<void> {
    await send({
      what: 'slack',
      url: this.url.value(),
      urlVariable: this.url.variable,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(slackMessage(event, this.ctx)),
      timeoutMs: this.ctx.timeoutMs,
    });
  }
}
