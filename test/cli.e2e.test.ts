/**
 * `lensflow run` failing for real on the local stack: it prints the root cause of the failure (the
 * innermost cause's message and type, and the activity), the Web UI link, and exits 1. Seconds:
 * the run fails at staging, before any Spark step.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { webUiLink } from '../src/settings';
import { stackSettings, uniquePrefix } from './helpers/stack';

const settings = stackSettings();
const repo = join(__dirname, '..');

test('a failed run prints its root cause, its type and activity, and the Web UI link', () => {
  const runId = `ml-100k-fails-${Date.now().toString(36)}`;
  const missing = join(repo, '.lensflow', 'no-such-movielens-copy');
  const run = spawnSync('node', [join(repo, 'dist', 'cli', 'main.js'), 'run', '--run-id', runId, '--dataset', 'ml-100k', '--source', `local:${missing}`, '--no-register', '--prefix', uniquePrefix('cli-fail')], {
    encoding: 'utf8',
    timeout: 110_000,
  });
  expect(run.status).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toContain(`run ${runId} did not complete: dataset ml-100k is incomplete in ${missing}/ml-100k: missing u.data`);
  expect(run.stderr).toContain('root cause: DatasetNotFound (ApplicationFailure) in activity 1 (stageDataset)');
  expect(run.stderr.trimEnd().split('\n').at(-1)).toBe(`Web UI: ${webUiLink(settings, `lensflow-${runId}`)}`);
});
