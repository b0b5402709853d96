/**
 * Result documents that the Spark jobs write as their last act and the activities read back.
 * These zod schemas are the one source of truth: `npm run contracts` exports them as JSON Schema
 * into `spark/lensflow_spark/contracts/`, where the jobs validate what they write.
 */
import { z } from 'zod';
import { DatasetName } from './datasets';

/** A storage URI as a job sees it: `s3://`, `s3a://` or a local path. */
const StorageUri = z.string().min(1);

/** Row counts of one table through cleaning: raw = clean + Σ quarantined. */
export const ReconciledCounts = z
  .object({
    raw: z.number().int().nonnegative(),
    clean: z.number().int().nonnegative(),
    /** Dropped rows per reason, e.g. `missing_value`. */
    quarantined: z.record(z.string(), z.number().int().nonnegative()),
  })
  .strict();

export const CleanResult = z
  .object({
    job: z.literal('clean'),
    dataset: DatasetName,
    outputs: z.object({ ratings: StorageUri, movies: StorageUri }).strict(),
    counts: z.object({ ratings: ReconciledCounts, movies: ReconciledCounts }).strict(),
  })
  .strict()
  .superRefine((r, ctx) => {
    for (const [table, c] of Object.entries(r.counts)) {
      const dropped = Object.values(c.quarantined).reduce((a, b) => a + b, 0);
      if (c.raw !== c.clean + dropped) {
        ctx.addIssue({ code: 'custom', path: ['counts', table], message: `raw ${c.raw} != clean ${c.clean} + quarantined ${dropped}` });
      }
    }
  });
export type CleanResult = z.infer<typeof CleanResult>;

/** Every job's result schema, by job name; the export writes one `<job>-result.schema.json` each. */
export const JobResults = { clean: CleanResult } as const;
export type JobName = keyof typeof JobResults;
export const JobName = z.enum(Object.keys(JobResults) as [JobName, ...JobName[]]);
