/**
 * The run layout across languages: where the Python worker writes a job's result is where the
 * workflow, the CLI and the EMR path read it (`resultUriOf`), both from `RUN_LAYOUT`.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { resultUriOf } from '../src/contracts/jobInputs';
import { loadSettings } from '../src/settings';

const REQUESTS = [
  { bucket: 'lensflow', prefix: 'lensflow', runId: 'ml-latest-small-1', resultName: 'evaluate' },
  { bucket: 'b-2', prefix: 'team/nightly', runId: 'r.2', resultName: 'grid/grid-003-rank12-reg0.1-iter10' },
  { bucket: 'b', prefix: 'p', runId: 'r', resultName: 'families/grid-torch_ease-000-l2_reg500' },
];

test('the Python worker writes each result where TypeScript reads it', () => {
  const venv = loadSettings().spark.venv ?? resolve(__dirname, '..', '.lensflow', 'venv');
  const script = ['import json, sys', 'from lensflow_spark.worker import result_uri_of', 'print(json.dumps([result_uri_of(r) for r in json.load(sys.stdin)]))'].join('\n');
  const res = spawnSync(join(venv, 'bin', 'python'), ['-c', script], {
    input: JSON.stringify(REQUESTS),
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: resolve(__dirname, '..', 'spark') },
  });
  expect({ status: res.status, stderr: res.stderr }).toMatchObject({ status: 0 });
  const python = JSON.parse(res.stdout) as string[];
  // The worker talks to S3 through Hadoop's s3a filesystem; the pipeline names the same keys s3://.
  expect(python.map((uri) => uri.replace(/^s3a:/, 's3:'))).toEqual(REQUESTS.map(resultUriOf));
  expect(resultUriOf(REQUESTS[1]!)).toBe('s3://b-2/team/nightly/runs/r.2/results/grid/grid-003-rank12-reg0.1-iter10.json');
});
