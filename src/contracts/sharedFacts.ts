/**
 * Facts both languages need, as data: exported next to the job schemas as JSON for the Python side
 * (`make contracts`; a jest test fails when the committed files are stale).
 */
import { BEST_POINT_RULE } from './bestPoint';
import { MODELS_FACT } from './models';
import { RUN_LAYOUT } from './pipeline';
import { RECOMMENDATION_SHARDS } from './recommendations';
import { CANDIDATE_DELIMITERS, RELEASE_FORMATS } from './releaseFormats';
import { SPARK_SETTINGS } from './sparkSettings';

export const SHARED_FACTS: Record<string, unknown> = {
  'release-formats.json': RELEASE_FORMATS,
  'candidate-delimiters.json': CANDIDATE_DELIMITERS,
  'best-point-rule.json': BEST_POINT_RULE,
  'models.json': MODELS_FACT,
  'recommendation-shards.json': RECOMMENDATION_SHARDS,
  'spark-settings.json': SPARK_SETTINGS,
  'run-layout.json': RUN_LAYOUT,
};
