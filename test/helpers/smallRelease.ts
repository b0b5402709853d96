/**
 * The small generated release the e2e files run on where the data is not what they test (outages,
 * cancels, the EMR path, the cluster): ml-25m's CSV format with planted structure, generated once
 * into the worker's dataset cache and shared by every file that names it.
 */
export const SMALL_RELEASE = {
  dataset: 'ml-25m' as const,
  source: { kind: 'synthetic' as const, ratings: 20_000, seed: 5 },
};

/** The same release as `lensflow run` options. */
export const SMALL_RELEASE_CLI = ['--dataset', SMALL_RELEASE.dataset, '--source', `synthetic:${SMALL_RELEASE.source.ratings}:${SMALL_RELEASE.source.seed}`];
