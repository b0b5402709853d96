/**
 * End to end on the local stack: the README's `lensflow run` starts `trainingPipeline` on the
 * stack's worker, which stages ml-latest-small in the S3 server and cleans it with spark-submit.
 * Everything is checked with independent tools: the `temporal` CLI and boto3/pyarrow.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TrainingPipelineResult } from '../src/contracts/pipeline';
import { boto3Json, stackSettings, temporalCli, uniquePrefix } from './helpers/stack';

const settings = stackSettings();
const repo = join(__dirname, '..');

test('lensflow run: stage and clean ml-latest-small through Temporal, S3 and Spark', () => {
  const prefix = uniquePrefix('e2e');
  const runId = `ml-latest-small-e2e-${randomBytes(3).toString('hex')}`;
  const cli = spawnSync('node', [join(repo, 'dist', 'cli', 'main.js'), 'run', '--run-id', runId, '--prefix', prefix], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  expect(cli.stderr).toContain(`Web UI: ${settings.temporal.webUiUrl}/namespaces/default/workflows/lensflow-${runId}`);
  expect(cli.status).toBe(0);
  const result = JSON.parse(cli.stdout) as TrainingPipelineResult;

  expect(result.clean.counts.ratings).toEqual({ raw: 100_836, clean: 100_836, quarantined: {} });
  expect(result.clean.counts.movies.clean).toBe(9_742);
  const runKey = `${prefix}/runs/${runId}`;
  expect(result.clean.outputs.ratings).toBe(`s3://${settings.s3.bucket}/${runKey}/processed/ratings`);

  const described = JSON.parse(temporalCli(settings, ['workflow', 'describe', '--workflow-id', `lensflow-${runId}`, '--output', 'json']));
  expect(described.workflowExecutionInfo.status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');

  // What is in S3, seen by boto3 and counted by pyarrow: Parquet parts and the magic committer's
  // JSON `_SUCCESS` summary, and a result JSON that matches the workflow's.
  const seen = boto3Json<{ success: { committer: string; filenames: string[] }; parts: number; rows: number; result: unknown }>(
    settings,
    `
import io, pyarrow.parquet as pq
bucket, folder = '${settings.s3.bucket}', '${runKey}/processed/ratings/'
keys = [o['Key'] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder)['Contents']]
parts = [k for k in keys if k.endswith('.parquet')]
rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)['Body'].read())).num_rows for k in parts)
success = json.loads(s3.get_object(Bucket=bucket, Key=folder + '_SUCCESS')['Body'].read())
result = json.loads(s3.get_object(Bucket=bucket, Key='${runKey}/results/clean.json')['Body'].read())
print(json.dumps({'success': success, 'parts': len(parts), 'rows': rows, 'result': result}))`,
  );
  expect(seen.success.committer).toBe('magic');
  expect(seen.parts).toBeGreaterThan(0);
  expect(seen.success.filenames).toHaveLength(seen.parts);
  expect(seen.rows).toBe(100_836);
  expect((seen.result as { counts: unknown }).counts).toEqual(result.clean.counts);
});
