/**
 * Determinism guard: recorded histories of real runs must replay against today's workflow code.
 * A change that alters the commands a run issues fails here; put it behind `patched()`.
 * Record a history with `temporal workflow show --workflow-id <id> --output json > test/histories/<name>.json`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('there are recorded histories to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(2);
});

test('every recorded history replays without nondeterminism', async () => {
  const histories = files.map((f) => ({ workflowId: f, history: JSON.parse(readFileSync(join(dir, f), 'utf8')) }));
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../src/workflows') }, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
});
