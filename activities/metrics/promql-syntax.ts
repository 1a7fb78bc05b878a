// PromQL syntax, checked offline with Prometheus's own grammar (the lezer grammar its web UI parses with), so a
// check whose query cannot parse is refused before a rollout starts instead of failing every analysis round.
// Client and worker side only: lezer must never enter the workflow bundle, so nothing under workflows/ imports this.
import { parser } from '@prometheus-io/lezer-promql';
import type { InputProblem } from '../../workflows/problems';
import type { Plan } from '../../workflows/types';
import {
  TEMPLATE_SETS,
  promDuration,
  renderQuery,
  TemplateError,
  type TemplateSetName,
  type TemplateVars,
} from './templates';

/** Values that stand in for the placeholders: what a rollout of app `checkout` in `default` would use. */
export const SAMPLE_VALUES = {
  namespace: 'default',
  app: 'checkout',
  version: 'v2',
  side: 'canary',
  workload: 'checkout-canary',
  service: 'checkout-canary',
  ingress: 'checkout',
  window: '5m',
} as const;

/** Where a query stops parsing: an offset into the text as written, and what is wrong there. */
export interface PromqlSyntaxError {
  /** Offset in the query as written (placeholders unsubstituted). */
  offset: number;
  message: string;
}

/**
 * The first syntax error of a PromQL expression, or undefined when Prometheus's grammar accepts it. Only syntax:
 * whether a function takes that many arguments or a metric exists is Prometheus's to say at query time.
 */
export function promqlSyntaxError(expr: string): PromqlSyntaxError | undefined {
  if (expr.trim() === '') return { offset: 0, message: 'the query is empty' };
  const tree = parser.parse(expr);
  let found: { from: number; to: number } | undefined;
  tree.iterate({
    enter: (node) => {
      if (found) return false;
      if (node.type.isError) {
        found = { from: node.from, to: node.to };
        return false;
      }
      return undefined;
    },
  });
  if (!found) return undefined;
  const unclosed = unclosedBrackets(expr);
  if (found.from >= expr.trimEnd().length) {
    return {
      offset: expr.trimEnd().length,
      message: `the query ends too early${unclosed ? `: ${unclosed}` : ' (an operand or argument is missing)'}`,
    };
  }
  const token = expr.slice(found.from, Math.max(found.to, found.from + 1)).trim() || expr[found.from];
  return {
    offset: found.from,
    message: `unexpected ${JSON.stringify(token.length > 30 ? `${token.slice(0, 30)}…` : token)}${unclosed ? ` (${unclosed})` : ''}`,
  };
}

const CLOSING: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

/** `1 "(" is never closed`, `")" closes nothing`, ...: bracket balance outside strings and comments, as a hint. */
function unclosedBrackets(expr: string): string | undefined {
  const open: string[] = [];
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    if (ch === '"' || ch === "'" || ch === '`') {
      // Skip the string literal (backslash escapes in "" and '').
      for (i++; i < expr.length && expr[i] !== ch; i++) if (expr[i] === '\\' && ch !== '`') i++;
    } else if (ch === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (ch in CLOSING) {
      open.push(ch);
    } else if (ch === ')' || ch === ']' || ch === '}') {
      const last = open.pop();
      if (last === undefined) return `one "${ch}" too many`;
      if (CLOSING[last] !== ch) return `"${ch}" where "${CLOSING[last]}" should close "${last}"`;
    }
  }
  if (open.length === 0) return undefined;
  const counts = new Map<string, number>();
  for (const b of open) counts.set(b, (counts.get(b) ?? 0) + 1);
  return [...counts]
    .map(([b, k]) => `${k} "${b}" ${k === 1 ? 'is' : 'are'} never closed (missing "${CLOSING[b]}")`)
    .join(', ');
}

interface Rendered {
  text: string;
  /** Maps an offset in `text` back to the query as written (a substituted value maps to its placeholder). */
  original: (offset: number) => number;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Fills the placeholders with sample values, remembering where each one was; throws TemplateError as renderQuery. */
function renderTracked(query: string, vars: TemplateVars): Rendered {
  // renderQuery refuses unknown placeholders and stray braces with its own messages.
  renderQuery(query, vars);
  const pieces: Array<{ from: number; to: number; at: number; length: number }> = [];
  let text = '';
  let last = 0;
  for (const m of query.matchAll(PLACEHOLDER)) {
    text += query.slice(last, m.index);
    const value = renderQuery(m[0], vars);
    pieces.push({ from: text.length, to: text.length + value.length, at: m.index, length: m[0].length });
    text += value;
    last = m.index + m[0].length;
  }
  text += query.slice(last);
  return {
    text,
    original: (offset) => {
      let shift = 0;
      for (const p of pieces) {
        if (offset < p.from) break;
        if (offset < p.to) return p.at;
        shift = p.at + p.length - p.to;
      }
      return offset + shift;
    },
  };
}

/** `line 2, column 7` in a multi-line query, `column 7` in a one-line one (both from 1). */
function position(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return text.includes('\n') ? `line ${line}, column ${column}` : `column ${column}`;
}

/** `, after "…rate(x[{{window}}])"`: up to 30 characters of the query as written before the error. */
function after(query: string, offset: number): string {
  const start = Math.max(0, offset - 30);
  const before = query.slice(start, offset).replace(/\s+/g, ' ');
  // Quoted as is (not JSON-escaped): the quotes inside a PromQL excerpt read better bare.
  return before.trim() === '' ? '' : `, after "${start > 0 ? '…' : ''}${before}"`;
}

export interface SyntaxCheckOptions {
  /** The template set whose selector stands in for {{selector}} (default http: the app's own labels). */
  templates?: TemplateSetName;
}

/** The sample values for one check's query, with its window and the set's canary selector. */
export function sampleVars(windowMs: number | undefined, templates: TemplateSetName = 'http'): TemplateVars {
  const vars: TemplateVars = {
    ...SAMPLE_VALUES,
    ...(windowMs !== undefined && windowMs > 0 ? { window: promDuration(windowMs / 1000) } : {}),
  };
  return { ...vars, selector: renderQuery(TEMPLATE_SETS[templates].selector.canary, vars) };
}

/**
 * The syntax problems of one query as written, with placeholders: an unknown placeholder, malformed braces, or
 * PromQL that does not parse once sample values stand in for the placeholders (the message says where, in the
 * query as written). Empty when it parses.
 */
export function querySyntaxMessage(query: string, vars: TemplateVars): string | undefined {
  let rendered: Rendered;
  try {
    rendered = renderTracked(query, vars);
  } catch (e) {
    if (e instanceof TemplateError) return e.message;
    throw e;
  }
  const error = promqlSyntaxError(rendered.text);
  if (!error) return undefined;
  const at = rendered.original(error.offset);
  const samples = Object.keys(vars)
    .filter((k) => new RegExp(`\\{\\{\\s*${k}\\s*\\}\\}`).test(query))
    .map((k) => `{{${k}}} as ${k === 'selector' ? "the template set's selector" : JSON.stringify(vars[k])}`);
  return (
    `is not valid PromQL: at ${position(query, at)}${after(query, at)}: ${error.message}. ` +
    "Fix the query; it was parsed with Prometheus's own grammar" +
    (samples.length > 0 ? `, with ${samples.join(', ')}` : '')
  );
}

/**
 * Every check of a validated plan whose raw `query:` (short or full form) does not parse as PromQL, with its path
 * (`analysis.checks[2].query`). Named metrics come from the template sets, which a unit test parses.
 */
export function querySyntaxProblems(plan: Plan, options: SyntaxCheckOptions = {}): InputProblem[] {
  const problems: InputProblem[] = [];
  plan.analysis.checks.forEach((check, index) => {
    if (check.query === undefined) return;
    const windowMs = plan.analysis.rules?.[index]?.windowMs;
    const message = querySyntaxMessage(check.query, sampleVars(windowMs, options.templates));
    if (message) problems.push({ path: `analysis.checks[${index}].query`, message });
  });
  return problems;
}
