/**
 * What each Spark job takes: one input document per job, validated here by the workflow's side and
 * in Python before the job runs (`make contracts` exports these beside the result schemas as
 * `<job>-input.schema.json`). The result URI is not part of a job's input: the activity that runs
 * the job derives it from the run layout (`JobRequest`).
 */
import { z } from 'zod';
import { DatasetName } from './datasets';
import { AlsPoint, FamilyPoint, RankingSettings, SplitProtocol } from './experiment';
import { FoldUris, type JobName } from './jobResults';
import { FamilyName, SERVED_FAMILIES, type ServedFamilyName } from './models';
import { runLayout } from './pipeline';
import { BucketName, KeyPrefix } from './s3';

/** A storage URI as a job sees it: `s3://`, `s3a://` or a local path. */
const StorageUri = z.string().min(1);

/** Options of every job that fits ALS: the seed of every random choice and the checkpoint folder. */
const ModelOptions = { seed: z.number().int(), checkpoint: StorageUri };

export const CleanInput = z.object({ dataset: DatasetName, raw: StorageUri, output: StorageUri }).strict();

export const SplitInput = z
  .object({
    ratings: StorageUri,
    /** Staged raw folder: ml-100k's official folds are read from there. */
    raw: StorageUri,
    protocol: SplitProtocol,
    output: StorageUri,
  })
  .strict();

export const AlsPointJobInput = z.object({ folds: z.array(FoldUris).min(1), point: AlsPoint, ...ModelOptions }).strict();

/** One model family's grid point cross-validated on the CV folds, scored by the family's objective. */
export const ModelPointInput = z
  .object({ family: FamilyName, point: FamilyPoint, folds: z.array(FoldUris).min(1), ranking: RankingSettings, ...ModelOptions })
  .strict();

/** Without `family`: plain ALS at an `AlsPoint`; with it: that family at its chosen `FamilyPoint`. */
export const TrainFinalInput = z
  .object({ ratings: StorageUri, family: FamilyName.optional(), point: z.union([AlsPoint, FamilyPoint]), model: StorageUri, ...ModelOptions })
  .strict();

export const EvaluateInput = z
  .object({
    folds: z.array(FoldUris).min(1),
    movies: StorageUri,
    point: AlsPoint,
    /** Each searched family's chosen point, evaluated beside ALS and the baselines (absent: ALS and baselines only). */
    families: z.partialRecord(FamilyName, FamilyPoint).optional(),
    ranking: RankingSettings,
    ...ModelOptions,
  })
  .strict();

export const AnalysisInput = z
  .object({
    ratings: StorageUri,
    movies: StorageUri,
    output: StorageUri,
    /** Absent: the analysis's own defaults (`AnalysisConfig`). */
    minRatings: z.number().int().min(1).optional(),
    priorWeight: z.number().min(0).optional(),
  })
  .strict();

/** The ranking families `recommend` can serve (`served` in `models.ts`). */
export const ServedFamily = z.enum(SERVED_FAMILIES as [ServedFamilyName, ...ServedFamilyName[]]);

export const RecommendInput = z
  .object({
    ratings: StorageUri,
    movies: StorageUri,
    output: StorageUri,
    /** The final ranking model: a family and its point, keyed by the family's hyperparameter names (`families.py`). */
    ranking: z.object({ family: ServedFamily, point: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])) }).strict(),
    /** Recommendations per user and similar movies per movie. */
    n: z.number().int().min(1).max(100),
    /** Only movies with at least this many ratings are served (3 drops the one-off ratings whose factors are noise). */
    minSupport: z.number().int().min(0).default(3),
    /** Similar movies are computed for this many most-rated movies (absent: the job's default). */
    similarFor: z.number().int().min(1).optional(),
    seed: z.number().int(),
    checkpoint: StorageUri,
  })
  .strict();

/** The model `recommend` serves: a ranking family and its point. */
export type ServedRanking = z.infer<typeof RecommendInput>['ranking'];

/** Served when the run searched no servable ranking family: implicit ALS at the point bench/models.md measured (1.74x most_popular's NDCG@10). */
export const DEFAULT_SERVED_RANKING: ServedRanking = { family: 'implicit_als', point: { rank: 32, reg_param: 0.1, max_iter: 10, alpha: 1.0 } };

/** The grid's best ranking model when `recommend` can serve its family, else the default. */
export function servedRanking(chosen: { family: string; point: object } | null): ServedRanking {
  const family = ServedFamily.safeParse(chosen?.family);
  return chosen && family.success ? { family: family.data, point: chosen.point as ServedRanking['point'] } : DEFAULT_SERVED_RANKING;
}

export const ReportInput = z
  .object({
    dataset: DatasetName,
    /** The clean job's result JSON. */
    clean: StorageUri,
    /** The analysis summary.json. */
    analysis: StorageUri,
    /** Folder of the grid points' result JSONs. */
    grid: StorageUri,
    /** The evaluate job's result JSON. */
    evaluation: StorageUri,
    /** Folder of the model families' `model_point` results (absent: no family was searched). */
    families: StorageUri.optional(),
    output: StorageUri,
  })
  .strict();

/** Every job's input schema, by job name; the export writes one `<job>-input.schema.json` each. */
export const JobInputs = {
  clean: CleanInput,
  split: SplitInput,
  als_point: AlsPointJobInput,
  model_point: ModelPointInput,
  evaluate: EvaluateInput,
  train_final: TrainFinalInput,
  analysis: AnalysisInput,
  recommend: RecommendInput,
  report: ReportInput,
} as const satisfies Record<JobName, z.ZodType>;
export type JobInputOf<J extends JobName> = z.input<(typeof JobInputs)[J]>;

/** A result name: `<job>` or a folder-qualified name such as `grid/grid-003-rank12-reg0.1-iter10`. */
const ResultName = z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'use letters, digits, dots, dashes, underscores and /');

/**
 * One job run as the workflow asks for it, on either runner: the job's input and where the run
 * lives. The result goes to `<runUri>results/<resultName>.json` (`resultUriOf`).
 */
export const JobRequest = z
  .object({
    runId: z.string().min(1),
    bucket: BucketName,
    prefix: KeyPrefix,
    resultName: ResultName,
    input: z.record(z.string(), z.unknown()),
  })
  .strict();
export type JobRequest<J extends JobName = JobName> = Omit<z.infer<typeof JobRequest>, 'input'> & { input: JobInputOf<J> };

/** What a job activity returns: the job's result, and whether it was already in S3. */
export interface JobRun<R> {
  result: R;
  /** True when a valid result was already in S3 and the job was not run again. */
  reused: boolean;
  durationSeconds: number;
}

/** Where a job's result goes: `<runUri>results/<resultName>.json` of the run layout. */
export function resultUriOf(req: Pick<z.infer<typeof JobRequest>, 'bucket' | 'prefix' | 'runId' | 'resultName'>): string {
  return runLayout(req.bucket, req.prefix, req.runId).resultUri(req.resultName);
}

/** The task queue of the warm local Spark engine, next to the workflow's own (`lensflow-spark`). */
export function sparkTaskQueueOf(taskQueue: string): string {
  return `${taskQueue}-spark`;
}
