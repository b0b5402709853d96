import { z } from 'zod';
import { FamilyName, SEARCHED_FAMILIES } from './models';

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
    /**
     * Successive halving over the CV folds (`workflows/halving.ts`): every point is scored on the
     * first fold and the better half goes on to the next. Default: on from 8 points, off below.
     */
    halving: z.boolean().optional(),
  })
  .strict();
export type AlsGrid = z.infer<typeof AlsGrid>;

/** A record whose keys must be the families' snake_case hyperparameter names (zod's own key check loses the message). */
function snakeCaseKeys<T extends z.ZodType<Record<string, unknown>>>(schema: T) {
  return schema.superRefine((record, ctx) => {
    for (const key of Object.keys(record)) {
      if (!/^[a-z][a-z0-9_]*$/.test(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `"${key}": use the family's snake_case hyperparameter names as lensflow_spark.families takes them (e.g. reg_param, max_iter)` });
      }
    }
  });
}

/** A hyperparameter value of a model family (numbers, flags, or a name). */
const ParamValue = z.union([z.number(), z.boolean(), z.string()]);

/**
 * One grid point of a model family: keys are the family's hyperparameter names exactly as
 * `lensflow_spark.families` takes them (snake_case, e.g. `{ rank: 32, reg_param: 0.1, alpha: 5 }`);
 * the Spark side rejects an unknown name with the family's list of known ones.
 */
export const FamilyPoint = snakeCaseKeys(z.record(z.string(), ParamValue));
export type FamilyPoint = z.infer<typeof FamilyPoint>;

/** One family's grid: a list of values per hyperparameter; the points are their cartesian product. */
export const FamilyGrid = snakeCaseKeys(z.record(z.string(), z.array(ParamValue).min(1)));
export type FamilyGrid = z.infer<typeof FamilyGrid>;

/**
 * A grid per model family, e.g. `{ bias_als: { rank: [20, 50], reg_param: [0.1, 0.2] }, torch_ease: { l2: [200, 500] } }`.
 * A family left out is not searched; `{}` searches the family's defaults (one point). Baselines
 * have nothing to tune and are always evaluated.
 */
export const FamilyGrids = z
  .record(z.string(), FamilyGrid)
  .superRefine((grids, ctx) => {
    for (const name of Object.keys(grids)) {
      if (!FamilyName.safeParse(name).success) {
        ctx.addIssue({ code: 'custom', path: [name], message: `unknown model family "${name}"; search one of ${SEARCHED_FAMILIES.join(', ')}` });
      } else if (!(SEARCHED_FAMILIES as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `${name} is a baseline with nothing to tune; search one of ${SEARCHED_FAMILIES.join(', ')}` });
      }
    }
  })
  .transform((grids) => grids as Partial<Record<FamilyName, FamilyGrid>>);
export type FamilyGrids = z.infer<typeof FamilyGrids>;

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
    /** Rating families only (absent in runs from before the model families). */
    r2: Metric.optional(),
    explained_variance: Metric.optional(),
    distributional_coverage: Metric.optional(),
    novelty: Metric.optional(),
  })
  .strict();
export type ModelMetrics = z.infer<typeof ModelMetrics>;
