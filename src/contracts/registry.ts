import { z } from 'zod';
import { DatasetName } from './datasets';
import { AlsPoint, FamilyPoint, ModelMetrics } from './experiment';
import { FamilyName } from './models';
import { BucketName, KeyPrefix } from './s3';

/**
 * A registered model: its run, where the model is, and the metrics it earned on a given protocol
 * and data content (the comparison key: champions are only compared within the same one).
 */
export const ModelEntry = z.object({
  runId: z.string(),
  dataset: DatasetName,
  /** Canonical JSON of the split protocol and ranking settings the metrics were measured under. */
  protocolKey: z.string(),
  /** The staged version (`raw/<dataset>/<version>/`, a SHA-256 over the files' checksums): the exact data the metrics were measured on. */
  dataKey: z.string(),
  /** The model family; absent: plain ALS (entries from before the model families). */
  family: FamilyName.optional(),
  /** An `AlsPoint` for plain ALS, else the family's point (its snake_case hyperparameter names). */
  point: z.union([AlsPoint, FamilyPoint]),
  metrics: ModelMetrics,
  modelUri: z.string(),
  registeredAt: z.string(),
});
export type ModelEntry = z.infer<typeof ModelEntry>;

export const RegisterModelInput = z.object({
  bucket: BucketName,
  prefix: KeyPrefix,
  challenger: ModelEntry.omit({ registeredAt: true }),
});
export type RegisterModelInput = z.infer<typeof RegisterModelInput>;

/** Every decision is recorded with both sides' metrics. Lower RMSE wins; equal keeps the champion. */
export const RegistryDecision = z.object({
  decision: z.enum(['promoted', 'kept-champion']),
  reason: z.string(),
  challenger: ModelEntry,
  champion: ModelEntry.nullable(),
  decisionUri: z.string(),
  championUri: z.string(),
});
export type RegistryDecision = z.infer<typeof RegistryDecision>;
