/**
 * What `lensflow` prints for people: the run summary, the live progress line and a failure's root
 * cause. Pure functions over the workflow's summary, progress query and error, so tests check them.
 */
import type { PipelineProgress, GridRow } from '../contracts/pipeline';
import type { PipelineSummary } from '../contracts/summary';
import type { ModelMetrics } from '../contracts/experiment';

const COLUMNS: [keyof ModelMetrics, string][] = [
  ['rmse', 'RMSE'],
  ['mae', 'MAE'],
  ['precision_at_k', 'P@k'],
  ['recall_at_k', 'R@k'],
  ['ndcg_at_k', 'NDCG@k'],
  ['map_at_k', 'MAP@k'],
  ['catalogue_coverage', 'coverage'],
];

const num = (v: number | null | undefined, digits = 4) => (v === null || v === undefined ? '—' : v.toFixed(digits));

export function describePoint(row: GridRow): string {
  const p = row.point;
  const alpha = p.implicitPrefs ? ` alpha ${p.alpha} (implicit)` : '';
  return `rank ${p.rank}, regParam ${p.regParam}, maxIter ${p.maxIter}${alpha}: CV RMSE ${num(row.rmse)} ± ${num(row.rmseStd)}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
}

/** The model families first (best RMSE first), then the baselines. */
export function modelOrder(s: PipelineSummary): { models: string[]; baselines: string[] } {
  const byRmse = (a: string, b: string) => (s.test[a]!.rmse ?? Infinity) - (s.test[b]!.rmse ?? Infinity);
  const names = Object.keys(s.test);
  return { models: names.filter((n) => !s.baselines.includes(n)).sort(byRmse), baselines: names.filter((n) => s.baselines.includes(n)).sort(byRmse) };
}

/** The run in one screen (~20 lines): status, best point, models vs baselines, champion, links. */
export function renderSummary(s: PipelineSummary, links: { webUi: string; report: string }): string {
  const { models, baselines } = modelOrder(s);
  const seconds = s.stages.reduce((t, st) => t + st.seconds, 0);
  const out = [`run ${s.runId} (${s.dataset}): ${s.status} in ${formatElapsed(seconds * 1000)}`, ''];
  out.push(`best ALS point of ${s.gridPoints} searched: ${describePoint(s.best)}`);
  out.push('', `test metrics (k = ${s.ranking.k}, relevant = rated ≥ ${s.ranking.relevanceThreshold}):`);
  out.push(...table([['model', ...COLUMNS.map(([, h]) => h)], ...[...models, ...baselines].map((m) => [baselines.includes(m) ? `${m} (baseline)` : m, ...COLUMNS.map(([c]) => num(s.test[m]![c]))])]));
  const bestBaseline = baselines[0];
  const top = models[0];
  const topRmse = top === undefined ? null : s.test[top]!.rmse;
  const baseRmse = bestBaseline === undefined ? null : s.test[bestBaseline]!.rmse;
  if (top !== undefined && topRmse !== null && bestBaseline !== undefined && baseRmse !== null) {
    const pct = ((baseRmse - topRmse) / baseRmse) * 100;
    out.push('', `${top} RMSE ${num(topRmse)} is ${Math.abs(pct).toFixed(1)}% ${pct >= 0 ? 'below' : 'ABOVE'} the best baseline (${bestBaseline}, ${num(baseRmse)})`);
  }
  out.push('', s.registry ? `registry: ${s.registry.decision} (${s.registry.reason})` : 'registry: not registered (--no-register)');
  out.push('', `report:  ${links.report}`, `Web UI:  ${links.webUi}`, `details: ${s.resultUri} (lensflow result ${s.runId} --json)`);
  return out.join('\n');
}

export function formatElapsed(ms: number): string {
  const t = Math.round(ms / 1000);
  const h = Math.floor(t / 3600);
  const mm = String(Math.floor((t % 3600) / 60)).padStart(2, '0');
  const ss = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** One line: stage, grid points done/total, best so far, elapsed. */
export function progressLine(p: PipelineProgress, elapsedMs: number): string {
  const grid = p.grid.total > 0 ? ` · grid ${p.grid.done}/${p.grid.total}` : '';
  const best = p.best ? ` · best so far rank ${p.best.point.rank} reg ${p.best.point.regParam} iter ${p.best.point.maxIter} RMSE ${num(p.best.rmse)}` : '';
  return `[${formatElapsed(elapsedMs)}] ${p.stage}${grid}${best}`;
}

/** The innermost failure of an error's `cause` chain: its message, type and the activity it came from. */
export function rootCause(err: unknown): { message: string; type: string; activity?: string } {
  let activity: string | undefined;
  let cur: unknown = err;
  for (let depth = 0; depth < 20; depth++) {
    const e = cur as { cause?: unknown; activityId?: string; activityType?: string };
    if (e?.activityId) activity = e.activityType ? `${e.activityId} (${e.activityType})` : e.activityId;
    if (!(e?.cause instanceof Error)) break;
    cur = e.cause;
  }
  const e = cur as Error & { type?: string | null };
  return { message: e.message, type: e.type ? `${e.type} (${e.name})` : e.name, activity };
}
