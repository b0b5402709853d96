/**
 * The `synthetic` data source: a generated MovieLens release (`lensflow_spark.synthetic`) in
 * ml-25m's CSV format, written once per (ratings, seed) into the worker's dataset cache.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { DataSource, DatasetName } from '../contracts/datasets';
import type { Settings } from '../settings';
import { DATASETS } from './datasetCatalog';

/** Releases whose reader reads ml-25m's CSV format, so a synthetic release can stand in for them. */
const CSV_RELEASES: readonly DatasetName[] = ['ml-latest-small', 'ml-latest', 'ml-20m', 'ml-25m'];

/** Writes (or finds in the cache) the release for `source` and returns its folder. */
export async function generateSynthetic(
  dataset: DatasetName,
  source: Extract<DataSource, { kind: 'synthetic' }>,
  data: Settings['data'],
): Promise<{ dir: string; origin: string }> {
  if (!CSV_RELEASES.includes(dataset)) {
    throw ApplicationFailure.nonRetryable(
      `a synthetic release has ml-25m's CSV format, which ${dataset} does not: use --dataset ml-25m (or ${CSV_RELEASES.join(', ')})`,
      'DatasetNotFound',
    );
  }
  const { python, packageZip } = data.synthetic ?? {};
  if (!python || !packageZip) throw ApplicationFailure.nonRetryable('LENSFLOW_VENV is not set: run `make setup` and start the worker with `make up`', 'DatasetUnavailable');
  const dir = join(data.cacheDir, 'synthetic', `${source.ratings}-seed${source.seed}`);
  const origin = `synthetic release of ${source.ratings} ratings, seed ${source.seed}`;
  // The generator renames ratings.csv into place last, so its presence means a complete release.
  if (DATASETS[dataset].files.every((f) => existsSync(join(dir, f)))) return { dir, origin: `${origin} (cached)` };
  const args = ['-m', 'lensflow_spark.synthetic', '--ratings', String(source.ratings), '--seed', String(source.seed), '--output', dir];
  const stderr = await run(python, args, { ...process.env, PYTHONPATH: packageZip });
  if (stderr !== undefined) {
    await rm(dir, { recursive: true, force: true });
    throw ApplicationFailure.nonRetryable(`the synthetic generator failed: ${stderr.slice(-2000)}`, 'DatasetUnavailable');
  }
  return { dir, origin };
}

/** Runs a command; undefined when it succeeds, else the tail of its stderr. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-8000)));
    child.on('error', (e) => resolvePromise(e.message));
    child.on('close', (code) => resolvePromise(code === 0 ? undefined : err || `exit code ${code}`));
  });
}
