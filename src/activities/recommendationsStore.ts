/**
 * Reading what the pipeline published for lookups: the dataset's current champion, a user's
 * recommendations with the model that made them, and a movie's similar movies, from the JSON the
 * `recommend` job writes (`contracts/recommendations`) in the run's folder (`runLayout`).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { DatasetName } from '../contracts/datasets';
import { runLayout } from '../contracts/pipeline';
import { recommendationShard, servedModelFile, similarMoviesFile } from '../contracts/recommendations';
import { ServedModel } from '../contracts/jobResults';
import { ModelEntry } from '../contracts/registry';
import { getObjectText } from './s3Client';

const MovieRef = z.object({ movieId: z.number().int(), title: z.string().nullable() });
/** One served movie; `because` is the user's rated movie it is most similar to by the model. */
export const Recommendation = MovieRef.extend({ genres: z.array(z.string()), score: z.number(), because: MovieRef.nullable() });
export type Recommendation = z.infer<typeof Recommendation>;
export const SimilarMovie = MovieRef.extend({ similarity: z.number() });
export type SimilarMovie = z.infer<typeof SimilarMovie>;

/** The key of the pointer to a dataset's most recently promoted champion. */
export function latestChampionKey(prefix: string, dataset: DatasetName): string {
  return `${prefix}/registry/${dataset}/latest-champion.json`;
}

export async function readChampion(s3: S3Client, bucket: string, prefix: string, dataset: DatasetName): Promise<ModelEntry | undefined> {
  const text = (await getObjectText(s3, bucket, latestChampionKey(prefix, dataset)))?.text;
  return text === undefined ? undefined : ModelEntry.parse(JSON.parse(text));
}

async function readRunJson(s3: S3Client, bucket: string, uri: string): Promise<{ key: string; doc: unknown }> {
  const key = uri.slice(`s3://${bucket}/`.length);
  const text = (await getObjectText(s3, bucket, key))?.text;
  return { key, doc: text === undefined ? undefined : JSON.parse(text) };
}

/** The model that made a run's lists; an error names the file when the run has none. */
export async function readServedModel(s3: S3Client, bucket: string, prefix: string, runId: string): Promise<ServedModel> {
  const { key, doc } = await readRunJson(s3, bucket, servedModelFile(runLayout(bucket, prefix, runId).recommendationsUri));
  if (doc === undefined) throw new Error(`run ${runId} has no served-model description (looked in s3://${bucket}/${key}); rerun it to serve with a ranking model`);
  return ServedModel.parse(doc);
}

/** A user's recommendations from a run; an error names the run and user when there are none. */
export async function readRecommendations(s3: S3Client, bucket: string, prefix: string, runId: string, userId: number): Promise<Recommendation[]> {
  const { key, doc } = await readRunJson(s3, bucket, recommendationShard(runLayout(bucket, prefix, runId).recommendationsUri, userId));
  const recs = (doc as Record<string, unknown> | undefined)?.[String(userId)];
  if (recs === undefined) throw new Error(`run ${runId} has no recommendations for user ${userId} (looked in s3://${bucket}/${key})`);
  return z.array(Recommendation).parse(recs);
}

/** The movies most similar to a movie by the run's model; an error names the run and movie when there are none. */
export async function readSimilarMovies(s3: S3Client, bucket: string, prefix: string, runId: string, movieId: number): Promise<SimilarMovie[]> {
  const { key, doc } = await readRunJson(s3, bucket, similarMoviesFile(runLayout(bucket, prefix, runId).recommendationsUri));
  const similar = (doc as Record<string, unknown> | undefined)?.[String(movieId)];
  if (similar === undefined) throw new Error(`run ${runId} has no similar movies for movie ${movieId} (only the most-rated movies with enough ratings have them; looked in s3://${bucket}/${key})`);
  return z.array(SimilarMovie).parse(similar);
}
