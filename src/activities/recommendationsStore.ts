/**
 * Reading what the pipeline published for lookups: the dataset's current champion and a user's
 * recommendations, from the shards the `recommend` job writes (`contracts/recommendations`) in the
 * run's folder (`runLayout`).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { DatasetName } from '../contracts/datasets';
import { runLayout } from '../contracts/pipeline';
import { recommendationShard } from '../contracts/recommendations';
import { ModelEntry } from '../contracts/registry';
import { getObjectText } from './s3Client';

export const Recommendation = z.object({ movieId: z.number().int(), title: z.string().nullable(), genres: z.array(z.string()), score: z.number() });
export type Recommendation = z.infer<typeof Recommendation>;

/** The key of the pointer to a dataset's most recently promoted champion. */
export function latestChampionKey(prefix: string, dataset: DatasetName): string {
  return `${prefix}/registry/${dataset}/latest-champion.json`;
}

export async function readChampion(s3: S3Client, bucket: string, prefix: string, dataset: DatasetName): Promise<ModelEntry | undefined> {
  const text = (await getObjectText(s3, bucket, latestChampionKey(prefix, dataset)))?.text;
  return text === undefined ? undefined : ModelEntry.parse(JSON.parse(text));
}

/** A user's recommendations from a run; an error names the run and user when there are none. */
export async function readRecommendations(s3: S3Client, bucket: string, prefix: string, runId: string, userId: number): Promise<Recommendation[]> {
  const key = recommendationShard(runLayout(bucket, prefix, runId).recommendationsUri, userId).slice(`s3://${bucket}/`.length);
  const text = (await getObjectText(s3, bucket, key))?.text;
  const recs = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>)[String(userId)];
  if (recs === undefined) throw new Error(`run ${runId} has no recommendations for user ${userId} (looked in s3://${bucket}/${key})`);
  return z.array(Recommendation).parse(recs);
}
