/** The lensflow worker: registers the workflows and activities on the `lensflow` task queue. */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { loadSettings } from '../settings';

async function main(): Promise<void> {
  const settings = loadSettings();
  const connection = await NativeConnection.connect({ address: settings.temporal.address });
  try {
    const worker = await Worker.create({
      connection,
      namespace: settings.temporal.namespace,
      taskQueue: settings.temporal.taskQueue,
      workflowsPath: require.resolve('../workflows'),
      activities: createActivities(settings),
    });
    await worker.run(); // returns after SIGINT/SIGTERM once in-flight tasks are done
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
