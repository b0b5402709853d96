/**
 * The rule that picks the best grid point, as data: the workflow (`workflows/grid.ts`), the report
 * (`lensflow_spark.grid`) and the bench all read this one definition, so they cannot disagree.
 */
import { z } from 'zod';

export const BestPointRule = z.object({
  /** Lower is better; two values this close are a tie. */
  metric: z.literal('rmse'),
  tolerance: z.number().nonnegative(),
  /** Ties go to the simpler model, key by key; a tie on every key goes to the earlier grid point. */
  tieBreak: z.array(z.object({ field: z.enum(['rank', 'regParam', 'maxIter']), order: z.enum(['asc', 'desc']) })),
});
export type BestPointRule = z.infer<typeof BestPointRule>;

export const BEST_POINT_RULE: BestPointRule = {
  metric: 'rmse',
  tolerance: 1e-12,
  // Smaller rank, then stronger regularisation, then fewer iterations.
  tieBreak: [
    { field: 'rank', order: 'asc' },
    { field: 'regParam', order: 'desc' },
    { field: 'maxIter', order: 'asc' },
  ],
};
