import { z } from 'zod';
import type { TrainingPipelineConfig } from './pipeline';
import { BucketName, KeyPrefix } from './s3';

/**
 * What a run id is claimed for: the run's whole input (without its run id) and the staged data
 * version. Two starts of one run id with equal claims are one run (the second resumes it).
 */
export const ClaimRunIdInput = z.object({
  bucket: BucketName,
  prefix: KeyPrefix,
  runId: z.string(),
  /** Start a fresh attempt under a new prefix instead of resuming (or being refused). */
  rerun: z.boolean(),
  /** The canonical input: what makes two runs the same run. */
  input: z.record(z.string(), z.unknown()),
  /** The Temporal execution claiming it: a retried claim by the same execution finds its own. */
  execution: z.string(),
});
export type ClaimRunIdInput = z.infer<typeof ClaimRunIdInput>;

/** `runs/<runId>/input.json` (or the attempt's): the claim, written before any stage output. */
export const RunInputRecord = z.object({
  runId: z.string(),
  attempt: z.number().int().min(1),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  input: z.record(z.string(), z.unknown()),
  execution: z.string(),
});
export type RunInputRecord = z.infer<typeof RunInputRecord>;

export const ClaimRunIdResult = z.object({
  /** The run id the outputs live under: the given one, or `<runId>.attempt-<n>` for a rerun. */
  runId: z.string(),
  attempt: z.number().int().min(1),
  /** True when the same input had claimed it before: finished stages are reused. */
  resumed: z.boolean(),
});
export type ClaimRunIdResult = z.infer<typeof ClaimRunIdResult>;

/**
 * What makes two runs the same run: the staged data version and every setting the outputs depend
 * on. Not the run id, the data source (the version says which data), the runner, the concurrency or
 * `register`, which change how a run is executed or published, not what it computes.
 */
export function runIdentity(config: TrainingPipelineConfig, dataVersion: string): Record<string, unknown> {
  const { dataset, split, grid, ranking, recommendations, seed } = config;
  return { dataset, dataVersion, split, grid, ranking, recommendations, seed };
}
