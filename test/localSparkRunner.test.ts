/** EMR-shaped step definitions and their translation to a local spark-submit. */
import { ApplicationFailure } from '@temporalio/common';
import { publishJobPackage } from '../src/activities/jobPackage';
import { createS3Client } from '../src/activities/s3Client';
import { buildSparkStep } from '../src/activities/sparkSteps';
import { cpus } from 'node:os';
import { fromLocalUris, localSparkConf, runLocalStep, toLocalCommand } from '../src/activities/localSparkRunner';
import { loadSettings } from '../src/settings';

const cleanInput = { dataset: 'ml-100k', raw: 's3://b/p/raw/ml-100k/', output: 's3://b/p/runs/x/processed/' };
const step = buildSparkStep('clean', 'ml-100k-20261124-abc', { codeUri: 's3://b/p/code/0123/' }, cleanInput, 's3://b/p/runs/x/results/clean.json');
const withJson = buildSparkStep('als_point', 'r-1', { codeUri: 's3://b/c/' }, { folds: [{ train: 's3://b/f/0/train', test: 's3://b/f/0/test' }] }, 's3://b/r.json');

test('a step is what EMR AddJobFlowSteps takes: command-runner.jar running spark-submit in client mode (a cancel ends the application), the input document as --input', () => {
  expect(step).toEqual({
    name: 'lensflow clean ml-100k-20261124-abc',
    actionOnFailure: 'CONTINUE',
    hadoopJarStep: {
      jar: 'command-runner.jar',
      args: [
        'spark-submit', '--deploy-mode', 'client', '--name', 'lensflow-clean-ml-100k-20261124-abc',
        '--py-files', 's3://b/p/code/0123/lensflow_spark.zip', 's3://b/p/code/0123/jobs/clean.py',
        '--input', JSON.stringify(cleanInput), '--result', 's3://b/p/runs/x/results/clean.json',
      ],
    },
  });
});

test('the local runner runs the same arguments on local Spark with s3a', () => {
  const settings = loadSettings({ LENSFLOW_VENV: '/v', LENSFLOW_SPARK_JARS: '/jars', LENSFLOW_S3_ENDPOINT: 'http://127.0.0.1:7070' });
  const { command, args } = toLocalCommand(step, settings);
  expect(command).toBe('/v/bin/spark-submit');
  expect(args).not.toContain('--deploy-mode');
  expect(args.slice(0, 4)).toEqual(['--master', 'local[*]', '--driver-memory', '2g']);
  expect(args).toContain('spark.driver.extraClassPath=/jars/*');
  expect(args).toContain('spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:7070');
  expect(args).toContain('spark.hadoop.fs.s3a.committer.name=magic');
  // ALS blocks = local cores, as the warm engine's session sets them (session.py's ALS_BLOCKS_CONF).
  expect(args).toContain(`spark.lensflow.alsBlocks=${cpus().length}`);
  expect(localSparkConf(loadSettings({ LENSFLOW_SPARK_JARS: '/jars', LENSFLOW_SPARK_MASTER: 'local[3]' }))).toContain('spark.lensflow.alsBlocks=3');
  expect(localSparkConf(loadSettings({ LENSFLOW_SPARK_JARS: '/jars', LENSFLOW_SPARK_MASTER: 'spark://127.0.0.1:7077' })).join(' ')).not.toContain('alsBlocks');
  expect(args.slice(-9)).toEqual([
    '--name', 'lensflow-clean-ml-100k-20261124-abc',
    '--py-files', 's3a://b/p/code/0123/lensflow_spark.zip', 's3a://b/p/code/0123/jobs/clean.py',
    '--input', '{"dataset":"ml-100k","raw":"s3a://b/p/raw/ml-100k/","output":"s3a://b/p/runs/x/processed/"}',
    '--result', 's3a://b/p/runs/x/results/clean.json',
  ]);
  // Credentials reach Spark through the environment (the AWS default chain), never the command line.
  expect(args.join(' ')).not.toMatch(/access\.key|secret/i);
});

test('S3 URIs inside JSON arguments are read as s3a:// too', () => {
  const settings = loadSettings({ LENSFLOW_VENV: '/v', LENSFLOW_SPARK_JARS: '/jars' });
  expect(toLocalCommand(withJson, settings).args.at(-3)).toBe('{"folds":[{"train":"s3a://b/f/0/train","test":"s3a://b/f/0/test"}]}');
});

test('URIs a local job reports come back in s3:// form', () => {
  expect(fromLocalUris({ outputs: { r: 's3a://b/k' }, n: 3, l: ['s3a://b/x', 'file:/tmp'] })).toEqual({
    outputs: { r: 's3://b/k' },
    n: 3,
    l: ['s3://b/x', 'file:/tmp'],
  });
});

test('a failing job on local Spark fails once, non-retryably, quoting the job\'s own error', async () => {
  const settings = loadSettings();
  if (!settings.spark.venv || !settings.s3.endpoint) throw new Error('needs the local stack: run with `make test`');
  const s3 = createS3Client(settings.s3);
  const prefix = `test/local-fail-${Date.now().toString(36)}`;
  const pkg = await publishJobPackage(s3, settings.spark, settings.s3.bucket, prefix);
  const missing = `s3://${settings.s3.bucket}/${prefix}/raw/nothing-here/`;
  const failing = buildSparkStep('clean', 'local-fail', pkg, { dataset: 'ml-latest-small', raw: missing, output: `s3://${settings.s3.bucket}/${prefix}/out/` }, `s3://${settings.s3.bucket}/${prefix}/clean.json`);
  const handles: unknown[] = [];
  const err = await runLocalStep(failing, settings, { logName: 'local-fail', heartbeat: (h) => handles.push(h), cancelled: new AbortController().signal }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe('SparkJobFailed');
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  expect((err as ApplicationFailure).message).toMatch(/MissingFile: s3a?:\/\/\S*nothing-here\/ratings\.csv: there is no such file/);
  expect(handles[0]).toMatchObject({ kind: 'local', pgid: expect.any(Number) });
}, 180_000);
