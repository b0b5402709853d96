/**
 * Result documents that the Spark jobs write as their last act and the activities read back.
 * These zod schemas are the one source of truth: `npm run contracts` exports them as JSON Schema
 * into `spark/lensflow_spark/contracts/`, where the jobs validate what they write.
 */
import { z } from 'zod';
import { DatasetName } from './datasets';
import { AlsPoint, FamilyPoint, ModelMetrics, RankingSettings, SplitProtocol } from './experiment';
import { FamilyName } from './models';

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

const Count = z.number().int().nonnegative();

/** One fold: Parquet folders of its train and test ratings. */
export const FoldUris = z.object({ fold: z.number().int().nonnegative(), train: StorageUri, test: StorageUri, nTrain: Count, nTest: Count }).strict();

/** Folds written once by `split` and reused by every grid point and the evaluation. */
export const SplitResult = z
  .object({
    job: z.literal('split'),
    protocol: SplitProtocol,
    /** Folds the grid search cross-validates on. */
    cv: z.array(FoldUris).min(1),
    /** Folds the final evaluation reports on (one holdout, or the k folds). */
    evaluation: z.array(FoldUris).min(1),
  })
  .strict();
export type SplitResult = z.infer<typeof SplitResult>;

const FoldScore = z.object({ fold: z.number().int().nonnegative(), rmse: z.number(), mae: z.number(), nTest: Count, nPredicted: Count }).strict();

/** One hyperparameter point evaluated over all CV folds: the unit the grid search fans out. */
export const AlsPointResult = z
  .object({
    job: z.literal('als_point'),
    point: AlsPoint,
    folds: z.array(FoldScore).min(1),
    mean: z.object({ rmse: z.number(), mae: z.number() }).strict(),
    std: z.object({ rmse: z.number(), mae: z.number() }).strict(),
  })
  .strict();
export type AlsPointResult = z.infer<typeof AlsPointResult>;

/** Scores of one fold or their mean: the family's objective metric and its companions (`rmse` + `mae`, or the ranking metrics at k). */
const Scores = z.record(z.string(), z.number().nullable());

/** One model family's grid point over all CV folds: the unit the per-family grid search fans out. */
export const ModelPointResult = z
  .object({
    job: z.literal('model_point'),
    family: FamilyName,
    point: FamilyPoint,
    /** The metric the family is selected by: `rmse` (lower is better) or `ndcg_at_k` (higher). */
    objective: z.enum(['rmse', 'ndcg_at_k']),
    folds: z.array(z.object({ fold: z.number().int().nonnegative(), nTest: Count, scores: Scores }).strict()).min(1),
    mean: Scores,
    std: Scores,
    /** Seconds spent fitting, summed over folds (each fit forced). */
    fitSeconds: z.number().nonnegative(),
  })
  .strict();
export type ModelPointResult = z.infer<typeof ModelPointResult>;

/** ALS, the searched families and the three baselines on the evaluation folds (means over folds). */
export const EvaluateResult = z
  .object({
    job: z.literal('evaluate'),
    point: AlsPoint,
    /** The searched families' points that were evaluated (absent: ALS and baselines only). */
    families: z.partialRecord(FamilyName, FamilyPoint).optional(),
    ranking: RankingSettings,
    folds: Count,
    models: z
      .object({ als: ModelMetrics, global_mean: ModelMetrics, user_item_bias: ModelMetrics, most_popular: ModelMetrics })
      .catchall(ModelMetrics),
    /**
     * Where the job's time went, summed over folds: the tables all models share, per model its `fit`
     * call and its top-k `lists` (a baseline's tables fill at its first list), and the one query that
     * computes every model's metrics (`metrics`).
     */
    seconds: z
      .object({
        shared: z.number().nonnegative(),
        fit: z.record(z.string(), z.number().nonnegative()),
        lists: z.record(z.string(), z.number().nonnegative()),
        metrics: z.number().nonnegative(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type EvaluateResult = z.infer<typeof EvaluateResult>;

/** The final model, trained on all clean ratings at the chosen point. */
export const TrainFinalResult = z
  .object({ job: z.literal('train_final'), family: FamilyName.optional(), point: z.union([AlsPoint, FamilyPoint]), modelUri: StorageUri, nRatings: Count, nUsers: Count, nMovies: Count })
  .strict();
export type TrainFinalResult = z.infer<typeof TrainFinalResult>;

/** SparkSQL analyses: Parquet tables plus a small JSON summary. */
export const AnalysisResult = z
  .object({
    job: z.literal('analysis'),
    outputs: z.record(z.string(), StorageUri),
    summaryUri: StorageUri,
    summary: z.record(z.string(), z.unknown()),
  })
  .strict();
export type AnalysisResult = z.infer<typeof AnalysisResult>;

/** Which model made the served lists, and what its scores are (never "predicted ratings" for a ranking model). */
export const ServedModel = z
  .object({
    family: z.string(),
    point: z.record(z.string(), z.unknown()),
    scoreLabel: z.string(),
    /** [lo, hi]: every served score lies in it. */
    scoreRange: z.tuple([z.number(), z.number()]),
    /** What a similar movie's `similarity` is. */
    similarity: z.string(),
  })
  .strict();
export type ServedModel = z.infer<typeof ServedModel>;

/** Top-N recommendations per user with explanations and similar movies, as Parquet and compact JSON. */
export const RecommendResult = z
  .object({
    job: z.literal('recommend'),
    n: z.number().int().positive(),
    minSupport: Count,
    model: ServedModel,
    outputs: z.object({ userRecs: StorageUri, userRecsJson: StorageUri, modelJson: StorageUri, similarMovies: StorageUri, similarMoviesJson: StorageUri }).strict(),
    nUsers: Count,
    /**
     * Where the job's time went: fitting the served model, its lists for every user (with titles
     * and explanations, written as Parquet), the per-user JSON shards, and the similar movies.
     */
    seconds: z
      .object({ fit: z.number().nonnegative(), lists: z.number().nonnegative(), shards: z.number().nonnegative(), similar: z.number().nonnegative() })
      .strict()
      .optional(),
  })
  .strict();
export type RecommendResult = z.infer<typeof RecommendResult>;

/** Plots (PNG) and the self-contained HTML report. */
export const ReportResult = z
  .object({ job: z.literal('report'), reportUri: StorageUri, plots: z.record(z.string(), StorageUri) })
  .strict();
export type ReportResult = z.infer<typeof ReportResult>;

/** Every job's result schema, by job name; the export writes one `<job>-result.schema.json` each. */
export const JobResults = {
  clean: CleanResult,
  split: SplitResult,
  als_point: AlsPointResult,
  model_point: ModelPointResult,
  evaluate: EvaluateResult,
  train_final: TrainFinalResult,
  analysis: AnalysisResult,
  recommend: RecommendResult,
  report: ReportResult,
} as const;
export type JobResultOf<J extends JobName> = z.infer<(typeof JobResults)[J]>;
export type JobName = keyof typeof JobResults;
export const JobName = z.enum(Object.keys(JobResults) as [JobName, ...JobName[]]);
