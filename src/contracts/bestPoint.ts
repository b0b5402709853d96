/**
 * The rule that picks the best grid point, as data: the workflow (`workflows/grid.ts`), the report
 * (`lensflow_spark.grid`) and the bench all read this one definition, so they cannot disagree.
 */
import { z } from 'zod';

/**
 * Only the points scored on the most CV folds compete (all of them under full cross-validation;
 * under successive halving, the ones that reached the last fold), here and in Python's `best_row`.
 */
export const BestPointRule = z.object({
  /** ALS's grid: lower is better. A model family is judged by its own objective (`OBJECTIVES` in models.ts); two values this close are a tie. */
  metric: z.literal('rmse'),
  tolerance: z.number().nonnegative(),
  /**
   * Ties go to the simpler model, key by key; a tie on every key goes to the earlier grid point.
   * Field names as in `AlsPoint`; a model family's point (snake_case keys) is matched by the
   * snake_case form (`regParam` -> `reg_param`). A family without the key skips it.
   */
  tieBreak: z.array(z.object({ field: z.enum(['rank', 'regParam', 'maxIter', 'l2']), order: z.enum(['asc', 'desc']) })),
});
export type BestPointRule = z.infer<typeof BestPointRule>;

export const BEST_POINT_RULE: BestPointRule = {
  metric: 'rmse',
  tolerance: 1e-12,
  // Smaller rank, then stronger regularisation, then fewer iterations, then a stronger L2 penalty.
  tieBreak: [
    { field: 'rank', order: 'asc' },
    { field: 'regParam', order: 'desc' },
    { field: 'maxIter', order: 'asc' },
    { field: 'l2', order: 'desc' },
  ],
};
