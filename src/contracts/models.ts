/**
 * Model families and metric names, as data: the workflow validates grids and picks winners with
 * them, and `make contracts` exports them as `models.json` for the Spark side (a pytest checks that
 * `lensflow_spark.families` registers exactly these families, with these kinds).
 */
import { z } from 'zod';

/** What a family is judged by: rating families predict ratings, ranking families make top-k lists. */
export const OBJECTIVES = {
  /** Rating families: lowest RMSE of predicted ratings on held-out ratings. */
  rating: { metric: 'rmse', better: 'lower' },
  /** Ranking families: highest NDCG@k of their top-k lists against the held-out relevant movies. */
  ranking: { metric: 'ndcg_at_k', better: 'higher' },
} as const;
export type ModelKind = keyof typeof OBJECTIVES;

/**
 * Every family `lensflow_spark.families` registers: its kind, whether it is a fixed baseline, and
 * whether `recommend` can serve it (it has item factors or item-item weights to rank and explain
 * with; `recommend.SCORE_RANGES` holds exactly these).
 */
export const MODEL_FAMILIES = {
  global_mean: { kind: 'rating', baseline: true, served: false },
  user_item_bias: { kind: 'rating', baseline: true, served: false },
  most_popular: { kind: 'ranking', baseline: true, served: false },
  als: { kind: 'rating', baseline: false, served: false },
  bias_als: { kind: 'rating', baseline: false, served: false },
  implicit_als: { kind: 'ranking', baseline: false, served: true },
  torch_ease: { kind: 'ranking', baseline: false, served: true },
  torch_autorec: { kind: 'rating', baseline: false, served: false },
} as const satisfies Record<string, { kind: ModelKind; baseline: boolean; served: boolean }>;
export type FamilyName = keyof typeof MODEL_FAMILIES;
export const FamilyName = z.enum(Object.keys(MODEL_FAMILIES) as [FamilyName, ...FamilyName[]], {
  error: (issue) => `unknown model family ${JSON.stringify(issue.input)}; known: ${Object.keys(MODEL_FAMILIES).join(', ')}`,
});

/** Families the grid search tunes (baselines are fixed and always evaluated). */
export const SEARCHED_FAMILIES = (Object.keys(MODEL_FAMILIES) as FamilyName[]).filter((f) => !MODEL_FAMILIES[f].baseline);
/** The ranking families `recommend` can serve. */
export type ServedFamilyName = { [F in FamilyName]: (typeof MODEL_FAMILIES)[F]['served'] extends true ? F : never }[FamilyName];
export const SERVED_FAMILIES = (Object.keys(MODEL_FAMILIES) as FamilyName[]).filter((f): f is ServedFamilyName => MODEL_FAMILIES[f].served);
/** The baselines every evaluation scores beside the families. */
export const BASELINE_FAMILIES = (Object.keys(MODEL_FAMILIES) as FamilyName[]).filter((f) => MODEL_FAMILIES[f].baseline);

/** The metric a family is selected by (`rmse` or `ndcg_at_k`) and which way is better. */
export function objectiveOf(family: FamilyName): (typeof OBJECTIVES)[ModelKind] {
  return OBJECTIVES[MODEL_FAMILIES[family].kind];
}

/** Metric names as `lensflow_spark.metrics` computes them, per table of the report. */
export const RATING_METRICS = ['rmse', 'mae', 'r2', 'explained_variance'] as const;
export const RANKING_METRICS = [
  'ndcg_at_k',
  'map_at_k',
  'precision_at_k',
  'recall_at_k',
  'catalogue_coverage',
  'distributional_coverage',
  'novelty',
] as const;
export const METRIC_NAMES = [...RATING_METRICS, ...RANKING_METRICS] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** The shared fact `models.json`. */
export const MODELS_FACT = { objectives: OBJECTIVES, families: MODEL_FAMILIES, ratingMetrics: RATING_METRICS, rankingMetrics: RANKING_METRICS };
