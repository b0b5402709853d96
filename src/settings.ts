/**
 * The one settings object of the TypeScript side, read from the environment once, explicitly,
 * by the entry points (worker, CLI, tests) — never at import time.
 *
 * AWS credentials are not settings: the AWS SDK takes them from its default chain (environment,
 * shared profile, SSO, IAM role). Locally `.lensflow/local.env` puts the S3 server's generated
 * keys into the environment.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { BucketName, KeyPrefix } from './contracts/s3';

const repoRoot = resolve(__dirname, '..');
const PACKAGE_ZIP = resolve(repoRoot, 'dist', 'spark', 'lensflow_spark.zip');

const Env = z.object({
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  LENSFLOW_TASK_QUEUE: z.string().default('lensflow'),
  LENSFLOW_WEB_UI_URL: z.string().url().default('http://127.0.0.1:8233'),
  AWS_REGION: z.string().default('us-east-1'),
  /** Set for an S3-compatible server (the local stack); unset means real AWS S3. */
  LENSFLOW_S3_ENDPOINT: z.string().url().optional(),
  LENSFLOW_BUCKET: BucketName.default('lensflow'),
  LENSFLOW_PREFIX: KeyPrefix.default('lensflow'),
  LENSFLOW_DATA_DIR: z.string().optional(),
  LENSFLOW_CACHE: z.string().optional(),
  /** Base URL of the GroupLens archives; tests point it at a loopback server. */
  LENSFLOW_GROUPLENS_URL: z.string().url().default('https://files.grouplens.org/datasets/movielens'),
  HOME: z.string().default('/tmp'),
  /** Python virtualenv with pyspark; its `bin/spark-submit` runs local steps. */
  LENSFLOW_VENV: z.string().optional(),
  /** Folder of the s3a jars (hadoop-aws, AWS SDK bundle, spark-hadoop-cloud). */
  LENSFLOW_SPARK_JARS: z.string().optional(),
  LENSFLOW_SPARK_MASTER: z.string().default('local[*]'),
  LENSFLOW_SPARK_DRIVER_MEMORY: z.string().default('2g'),
  LENSFLOW_SPARK_SHUFFLE_PARTITIONS: z.coerce.number().int().min(1).default(8),
  /** An EMR-API endpoint other than AWS's (the tests' EMR test server). */
  LENSFLOW_EMR_ENDPOINT: z.string().url().optional(),
  LENSFLOW_EMR_POLL_SECONDS: z.coerce.number().positive().default(15),
  /** How long a failed step's logs are waited for: EMR uploads them about every 5 minutes. */
  LENSFLOW_EMR_LOG_WAIT_SECONDS: z.coerce.number().positive().default(480),
  /** Where step logs and other worker-local state go. */
  LENSFLOW_STATE_DIR: z.string().default(resolve(repoRoot, '.lensflow')),
});

export interface Settings {
  temporal: { address: string; namespace: string; taskQueue: string; webUiUrl: string };
  s3: { region: string; endpoint?: string; bucket: string; prefix: string };
  emr: { region: string; endpoint?: string; pollMs: number; logWaitMs: number };
  data: {
    localDir?: string;
    cacheDir: string;
    downloadBaseUrl: string;
    /** Runs `lensflow_spark.synthetic` for `synthetic` sources: the venv's python and the package zip. */
    synthetic?: { python?: string; packageZip: string };
  };
  spark: {
    venv?: string;
    jarsDir?: string;
    master: string;
    driverMemory: string;
    shufflePartitions: number;
    /** The zipped `lensflow_spark` package (built by `make build`) and the job entry scripts. */
    packageZip: string;
    jobsDir: string;
    /** Published with the package for EMR: the bootstrap script and the pins it installs on every node. */
    emrBootstrap: string;
    requirements: string;
    constraints: string;
  };
  stateDir: string;
}

/** Parses the environment into Settings; throws one error naming every bad variable. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid lensflow settings in the environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const cache = e.LENSFLOW_CACHE ?? resolve(e.HOME, '.cache', 'lensflow');
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.LENSFLOW_TASK_QUEUE,
      webUiUrl: e.LENSFLOW_WEB_UI_URL,
    },
    s3: { region: e.AWS_REGION, endpoint: e.LENSFLOW_S3_ENDPOINT, bucket: e.LENSFLOW_BUCKET, prefix: e.LENSFLOW_PREFIX },
    emr: {
      region: e.AWS_REGION, endpoint: e.LENSFLOW_EMR_ENDPOINT,
      pollMs: e.LENSFLOW_EMR_POLL_SECONDS * 1000, logWaitMs: e.LENSFLOW_EMR_LOG_WAIT_SECONDS * 1000,
    },
    data: { localDir: e.LENSFLOW_DATA_DIR ? resolve(e.LENSFLOW_DATA_DIR) : undefined, cacheDir: resolve(cache, 'datasets'),
      downloadBaseUrl: e.LENSFLOW_GROUPLENS_URL.replace(/\/+$/, ''),
      synthetic: { python: e.LENSFLOW_VENV && resolve(e.LENSFLOW_VENV, 'bin', 'python'), packageZip: PACKAGE_ZIP },
    },
    spark: {
      venv: e.LENSFLOW_VENV,
      jarsDir: e.LENSFLOW_SPARK_JARS,
      master: e.LENSFLOW_SPARK_MASTER,
      driverMemory: e.LENSFLOW_SPARK_DRIVER_MEMORY,
      shufflePartitions: e.LENSFLOW_SPARK_SHUFFLE_PARTITIONS,
      packageZip: PACKAGE_ZIP,
      jobsDir: resolve(repoRoot, 'spark', 'jobs'),
      emrBootstrap: resolve(repoRoot, 'deploy', 'aws', 'emr-bootstrap-venv.sh'),
      requirements: resolve(repoRoot, 'spark', 'requirements.txt'),
      constraints: resolve(repoRoot, 'spark', 'constraints.txt'),
    },
    stateDir: e.LENSFLOW_STATE_DIR,
  };
}

/** The Web UI page of one workflow execution. */
export function webUiLink(settings: Settings, workflowId: string): string {
  return `${settings.temporal.webUiUrl}/namespaces/${settings.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}`;
}
