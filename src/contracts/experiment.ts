import { z } from 'zod';

/** One ALS hyperparameter point, with Spark's parameter names (what users know from MLlib). */
export const AlsPoint = z
  .object({
    rank: z.number().int().min(1).max(500),
    regParam: z.number().min(0),
    maxIter: z.number().int().min(1).max(100),
    /** Confidence scale for implicit feedback; only used with implicitPrefs. */
    alpha: z.number().min(0).default(1),
    implicitPrefs: z.boolean().default(false),
  })
  .strict();
export type AlsPoint = z.infer<typeof AlsPoint>;

/** Lists per hyperparameter; the grid is their cartesian product. */
export const AlsGrid = z
  .object({
    rank: z.array(z.number().int().min(1).max(500)).min(1).default([10]),
    regParam: z.array(z.number().min(0)).min(1).default([0.1]),
    maxIter: z.array(z.number().int().min(1).max(100)).min(1).default([10]),
    alpha: z.array(z.number().min(0)).min(1).default([1]),
    implicitPrefs: z.boolean().default(false),
  })
  .strict();
export type AlsGrid = z.infer<typeof AlsGrid>;

/**
 * How ratings are split. `random` / `time` hold out a test set (seeded random rows, or each user's
 * latest ratings) and cross-validate the grid on `cvFolds` folds of the rest; `kfold` evaluates on
 * k folds of everything; `official` uses ml-100k's u1..u5 folds for both.
 */
export const SplitProtocol = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('random'),
    testFraction: z.number().gt(0).lt(1).default(0.2),
    cvFolds: z.number().int().min(2).max(10).default(3),
    seed: z.number().int().default(42),
  }),
  z.object({
    kind: z.literal('time'),
    testFraction: z.number().gt(0).lt(1).default(0.2),
    cvFolds: z.number().int().min(2).max(10).default(3),
    seed: z.number().int().default(42),
  }),
  z.object({ kind: z.literal('kfold'), k: z.number().int().min(2).max(10).default(5), seed: z.number().int().default(42) }),
  z.object({ kind: z.literal('official') }),
]);
export type SplitProtocol = z.infer<typeof SplitProtocol>;

/** Ranking evaluation settings: cut-off k and the held-out rating that counts as relevant. */
export const RankingSettings = z.object({
  k: z.number().int().min(1).max(100).default(10),
  relevanceThreshold: z.number().default(4),
});
export type RankingSettings = z.infer<typeof RankingSettings>;

const Metric = z.number().nullable();
/** Metric names as the Spark side computes them; null where undefined (e.g. no relevant items). */
export const ModelMetrics = z
  .object({
    rmse: Metric,
    mae: Metric,
    precision_at_k: Metric,
    recall_at_k: Metric,
    ndcg_at_k: Metric,
    map_at_k: Metric,
    catalogue_coverage: Metric,
  })
  .strict();
export type ModelMetrics = z.infer<typeof ModelMetrics>;
