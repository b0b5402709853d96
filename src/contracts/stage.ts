import { z } from 'zod';
import { DatasetName, DataSource } from './datasets';
import { BucketName, KeyPrefix, S3Uri } from './s3';

export const StageDatasetInput = z.object({
  dataset: DatasetName,
  source: DataSource,
  bucket: BucketName,
  prefix: KeyPrefix,
});
export type StageDatasetInput = z.infer<typeof StageDatasetInput>;

export const StagedFile = z.object({
  name: z.string(),
  uri: S3Uri,
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** `uploaded` on this call, or `unchanged` when the same content was already there. */
  action: z.enum(['uploaded', 'unchanged']),
});

export const StageDatasetResult = z.object({
  dataset: DatasetName,
  /** Folder URI that holds the raw files, ending in `/`. */
  rawUri: S3Uri,
  /** Where the files came from: a local folder or the verified download. */
  origin: z.string(),
  files: z.array(StagedFile),
  /**
   * SHA-256 over the files' names and checksums: the staged version. `rawUri` ends in it, and the
   * registry compares metrics only within one.
   */
  contentSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type StageDatasetResult = z.infer<typeof StageDatasetResult>;

/** `manifest.json` of a staged version, written after its files: a version that has one is complete. */
export const StagedVersion = z.object({
  dataset: DatasetName,
  version: z.string().regex(/^[0-9a-f]{64}$/),
  rawUri: S3Uri,
  files: z.array(StagedFile.omit({ action: true })),
});
export type StagedVersion = z.infer<typeof StagedVersion>;
