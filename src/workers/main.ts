/** The lensflow worker: registers the workflows and activities on the `lensflow` task queue. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { loadSettings } from '../settings';

async function main(): Promise<void> {
  const settings = loadSettings();
  const connection = await NativeConnection.connect({ address: settings.temporal.address });
  const clientConnection = await Connection.connect({ address: settings.temporal.address });
  const client = new Client({ connection: clientConnection, namespace: settings.temporal.namespace });
  try {
    const worker = await Worker.create({
      connection,
      namespace: settings.temporal.namespace,
      taskQueue: settings.temporal.taskQueue,
      workflowsPath: require.resolve('../workflows'),
      activities: createActivities(settings, client),
      // Spark steps heartbeat every 2 s; sending each one promptly is what lets a cancel reach
      // spark-submit within seconds rather than at the default throttle of up to a minute.
      maxHeartbeatThrottleInterval: '2s',
    });
    await worker.run(); // returns after SIGINT/SIGTERM once in-flight tasks are done
  } finally {
    await clientConnection.close();
    await connection.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
