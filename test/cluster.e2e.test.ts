/**
 * The pipeline on a standalone Spark cluster: one master and two workers on 127.0.0.1 on ports of
 * their own (setup/cluster.sh, Spark's own daemons), a warm engine whose session targets the master
 * (`LENSFLOW_SPARK_MASTER`), and the whole pipeline on a tiny synthetic release with one grid point,
 * to Completed. The work must have run on the cluster: the master lists the engine as its
 * application, and each of the two executors' own logs records finished tasks. The engine and a
 * lensflow worker serve a task queue of this suite's own, so the stack's engine never sees its jobs.
 * Everything the suite starts it stops. Also `make cluster-test`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingPipelineResult } from '../src/contracts/pipeline';
import { runCli } from './helpers/cli';
import { SMALL_RELEASE_CLI } from './helpers/smallRelease';
import { stackSettings, uniquePrefix } from './helpers/stack';
import { SHORT_LIVED_JIT, shortLivedSubmitOpts } from './helpers/shortLivedJvm';
import { waitFor } from './helpers/waitFor';

// A few minutes on an idle 2-core machine; 12 under the load of six engineers' suites.
jest.setTimeout(15 * 60_000);
const settings = stackSettings();
const repo = join(__dirname, '..');
const python = join(settings.spark.venv!, 'bin', 'python');
const queue = `lensflow-cluster-${randomBytes(3).toString('hex')}`;
const state = mkdtempSync(join(tmpdir(), 'lensflow-cluster-'));
const GRID = { rank: [4], regParam: [0.1], maxIter: [3] };
const SPLIT = { kind: 'random', testFraction: 0.2, cvFolds: 2, seed: 7 };

/** A port the kernel hands out as free on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
/** Three consecutive free ports: the master's UI and the two workers' (cluster.sh uses UI, UI+1, UI+2). */
async function freeUiBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await portFree(base)) && (await portFree(base + 1)) && (await portFree(base + 2))) return base;
  }
}

/** A long-lived child in a process group of its own, with its output kept for waits and failures. */
function startService(command: string, args: string[], env: NodeJS.ProcessEnv): { proc: ChildProcess; output: () => string } {
  let out = '';
  const proc = spawn(command, args, { cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}
function stopService(proc: ChildProcess | undefined): Promise<void> {
  if (!proc?.pid || proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    process.kill(-proc.pid!, 'SIGTERM');
  });
}

let clusterEnv: NodeJS.ProcessEnv;
let master: string;
let uiPort: number;
let engine: ReturnType<typeof startService> | undefined;
let worker: ReturnType<typeof startService> | undefined;

beforeAll(async () => {
  const port = await freePort();
  uiPort = await freeUiBase();
  master = `spark://127.0.0.1:${port}`;
  clusterEnv = { ...process.env, LENSFLOW_CLUSTER_PORT: String(port), LENSFLOW_CLUSTER_UI_PORT: String(uiPort), LENSFLOW_CLUSTER_STATE: state };
  const up = spawnSync('bash', ['setup/cluster.sh', 'up'], { cwd: repo, env: clusterEnv, encoding: 'utf8' });
  if (up.status !== 0) throw new Error(`cluster did not come up: ${up.stderr}`);

  engine = startService(python, ['-m', 'lensflow_spark.worker'], {
    ...process.env,
    PYTHONPATH: join(repo, 'spark'),
    SPARK_LOCAL_IP: '127.0.0.1',
    PYSPARK_PYTHON: python,
    LENSFLOW_STATE_DIR: join(state, 'engine'),
    LENSFLOW_TASK_QUEUE: queue,
    LENSFLOW_SPARK_MASTER: master,
    LENSFLOW_SPARK_DRIVER_MEMORY: '1g',
    // The engine's driver and its executors serve this one small run: C1 only (shortLivedJvm.ts).
    SPARK_SUBMIT_OPTS: shortLivedSubmitOpts(),
    PYSPARK_SUBMIT_ARGS: `--conf spark.executor.extraJavaOptions=${SHORT_LIVED_JIT} pyspark-shell`,
  });
  worker = startService('node', [join(repo, 'dist', 'workers', 'main.js')], { ...process.env, LENSFLOW_TASK_QUEUE: queue });
  await waitFor('the cluster engine to be ready', () => (engine!.output().includes('spark worker ready') ? true : undefined), {
    timeoutMs: 180_000,
    intervalMs: 500,
    seen: () => engine!.output().slice(-2000),
  });
  await waitFor('the lensflow worker to run', () => (/Worker state changed[\s\S]*RUNNING/.test(worker!.output()) ? true : undefined), {
    timeoutMs: 120_000,
    intervalMs: 500,
    seen: () => worker!.output().slice(-2000),
  });
});

afterAll(async () => {
  await stopService(worker?.proc);
  await stopService(engine?.proc);
  spawnSync('bash', ['setup/cluster.sh', 'down'], { cwd: repo, env: clusterEnv, encoding: 'utf8' });
  rmSync(state, { recursive: true, force: true });
});

test('the pipeline runs to Completed on a master and two workers, its tasks on both executors', async () => {
  const runId = `cluster-${randomBytes(3).toString('hex')}`;
  // Not spawnSync: the event loop stays free, so jest's timeout and afterAll's clean-up still run.
  const cli = await runCli(
    ['run', ...SMALL_RELEASE_CLI, '--run-id', runId, '--grid', JSON.stringify(GRID),
     '--split', JSON.stringify(SPLIT), '--prefix', uniquePrefix('cluster'), '--no-register', '--json'], // prettier-ignore
    { env: { ...process.env, LENSFLOW_TASK_QUEUE: queue } },
  );
  if (cli.status !== 0) throw new Error(`run failed: ${cli.stderr}\nengine: ${engine!.output().slice(-3000)}`);
  const result = JSON.parse(cli.stdout) as TrainingPipelineResult;
  expect(result.details.final.nRatings).toBeGreaterThan(15_000);
  expect(result.test.als.rmse).toBeGreaterThan(0.3);
  expect(result.test.als.rmse).toBeLessThan(1.5);
  expect(result.stages.map((s) => s.stage)).toEqual(expect.arrayContaining(['clean', 'grid', 'recommend', 'report']));

  // The master's own view: the engine is its running application, with both workers' cores.
  const view = (await (await fetch(`http://127.0.0.1:${uiPort}/json/`)).json()) as {
    workers: Array<{ state: string }>;
    activeapps: Array<{ id: string; name: string; cores: number }>;
  };
  expect(view.workers.filter((w) => w.state === 'ALIVE')).toHaveLength(2);
  const app = view.activeapps.find((a) => a.name === 'lensflow-engine');
  expect(app).toBeDefined();
  expect(app!.cores).toBe(2);

  // Each worker launched one executor for it, and each executor's log records tasks it finished.
  const appDir = join(state, 'work', app!.id);
  expect(existsSync(appDir)).toBe(true);
  const executors = readdirSync(appDir);
  expect(executors).toHaveLength(2);
  for (const executor of executors) {
    const log = readFileSync(join(appDir, executor, 'stderr'), 'utf8');
    expect((log.match(/Finished task/g) ?? []).length).toBeGreaterThan(0);
  }
});
