/**
 * The workflow's result as the Web UI and `lensflow run` show it: a compact summary plus URIs. The
 * full document (every job's result, `TrainingPipelineResult`) is written to S3 at `resultUri`.
 */
import { z } from 'zod';
import { DatasetName } from './datasets';
import { ModelMetrics, RankingSettings } from './experiment';
import { BASELINE_FAMILIES, FamilyName } from './models';
import { ChosenModel, FamilyRow, GridRow, RunId, StageTiming } from './pipeline';
import { ReconciledCounts } from './jobResults';
import { S3Uri } from './s3';

/** Models every run scores as reference points; every other model name in the evaluation is a model family. */
export const BASELINES = BASELINE_FAMILIES;

/** Grid rows kept in the summary, best first; the full grid is in the document. */
export const SUMMARY_GRID_ROWS = 10;

export const PipelineSummary = z
  .object({
    runId: RunId,
    dataset: DatasetName,
    status: z.literal('completed'),
    runUri: S3Uri,
    /** The full result document (`TrainingPipelineResult`) in S3. */
    resultUri: z.string(),
    /** The grid search's best point (mean CV scores). */
    best: GridRow,
    /** Grid points searched: plain ALS's and every model family's. */
    gridPoints: z.number().int().nonnegative(),
    /** When model families were searched: each one's best point, the registered rating model and the served ranking model. */
    families: z.object({ best: z.partialRecord(FamilyName, FamilyRow), rating: ChosenModel, ranking: ChosenModel.nullable() }).optional(),
    /** The best `SUMMARY_GRID_ROWS` grid rows, best first. */
    grid: z.array(GridRow).max(SUMMARY_GRID_ROWS),
    /** Test metrics of every model and baseline the evaluation scored, by name (new model families included). */
    test: z.object({ als: ModelMetrics, global_mean: ModelMetrics, user_item_bias: ModelMetrics, most_popular: ModelMetrics }).catchall(ModelMetrics),
    baselines: z.array(z.string()),
    ranking: RankingSettings,
    clean: z.object({ counts: z.object({ ratings: ReconciledCounts, movies: ReconciledCounts }) }),
    outputs: z.record(z.string(), z.string()),
    registry: z
      .object({ decision: z.enum(['promoted', 'kept-champion']), reason: z.string(), champion: z.string().nullable(), decisionUri: z.string() })
      .nullable(),
    stages: z.array(StageTiming),
  })
  .strict();
export type PipelineSummary = z.infer<typeof PipelineSummary>;
