/** The worker's activities, built once over the worker's settings and S3 client. */
import type { Settings } from '../settings';
import { makeRunSparkStep } from './runSparkStep';
import { createS3Client } from './s3Client';
import { makeStageDataset } from './stageDataset';

export function createActivities(settings: Settings) {
  const s3 = createS3Client(settings.s3);
  return {
    stageDataset: makeStageDataset(s3, settings.data),
    runSparkStep: makeRunSparkStep(s3, settings),
  };
}

/** Activity signatures for `proxyActivities` in workflow code (imported as a type only). */
export type Activities = ReturnType<typeof createActivities>;
