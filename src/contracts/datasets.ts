import { z } from 'zod';

/** MovieLens releases lensflow knows how to stage. */
export const DatasetName = z.enum(['ml-latest-small', 'ml-latest', 'ml-100k', 'ml-1m', 'ml-10m', 'ml-20m', 'ml-25m']);
export type DatasetName = z.infer<typeof DatasetName>;

/**
 * Where the worker finds the raw files.
 * - `auto`: `LENSFLOW_DATA_DIR/<dataset>/` when the worker has it, otherwise the GroupLens download.
 * - `local`: `<dir>/<dataset>/` on the worker's disk; an error if it is missing.
 * - `grouplens`: the official zip, cached on the worker and checked against its published SHA-256.
 * - `synthetic`: a generated release of `ratings` ratings in ml-25m's CSV format (`syntheticSource`).
 */
export const DataSource = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('auto') }),
  z.object({ kind: z.literal('local'), dir: z.string().min(1) }),
  z.object({ kind: z.literal('grouplens') }),
  z.object({ kind: z.literal('synthetic'), ratings: z.number().int().min(1000), seed: z.number().int().min(0).default(42) }),
]);
export type DataSource = z.infer<typeof DataSource>;
