/** Nightly retrains: `lensflow schedule create` makes a Temporal Schedule that starts the pipeline. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { stackSettings, temporalCli } from './helpers/stack';
import { waitFor } from './helpers/waitFor';

const settings = stackSettings();
const cli = (args: string[]) => spawnSync('node', [join(__dirname, '..', 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8' });

test('a schedule created with the CLI starts a run when triggered, with overlap policy Skip', async () => {
  const scheduleId = `test-nightly-${randomBytes(3).toString('hex')}`;
  const created = cli(['schedule', 'create', '--cron', '0 2 * * *', '--id', scheduleId, '--dataset', 'ml-latest-small', '--prefix', `test/${scheduleId}`, '--no-register']);
  expect(created.stderr).toBe('');
  expect(created.status).toBe(0);
  const client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }) });
  try {
    const described = await client.schedule.getHandle(scheduleId).describe();
    expect(described.policies.overlap).toBe('SKIP');
    expect(described.spec.calendars).toHaveLength(1); // the cron expression, as the server stores it

    temporalCli(settings, ['schedule', 'trigger', '--schedule-id', scheduleId]);
    const started = await waitFor('the triggered schedule to start a workflow', async () =>
      (await client.schedule.getHandle(scheduleId).describe()).info.recentActions[0]?.action.workflow.workflowId,
    );
    expect(started).toMatch(new RegExp(`^${scheduleId}-`));
    const run = client.workflow.getHandle(started);
    expect((await run.describe()).type).toBe('trainingPipeline');
    await run.cancel(); // it has proved the point; do not spend a full training run on it
  } finally {
    expect(cli(['schedule', 'delete', scheduleId]).status).toBe(0);
    await client.connection.close();
  }
});
