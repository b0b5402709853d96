import type { JobName } from '../contracts/jobResults';
import type { SparkStep } from '../contracts/sparkStep';

/** URIs of a published job package: `<codeUri>lensflow_spark.zip` and `<codeUri>jobs/<job>.py`. */
export interface JobPackage {
  codeUri: string;
}

/**
 * Describes one job run as the EMR step that runs it, in client deploy mode: the driver is the
 * step's own child process on the primary node, so cancelling the step (CancelSteps) ends the Spark
 * application. In cluster mode the step would be only the YARN client, and the application would
 * run on, writing under the run's prefix, after the run reported Canceled. The one place where a
 * job's input document becomes argv: `jobs/<job>.py --input '<json>' --result <uri>`.
 */
export function buildSparkStep(job: JobName, runId: string, pkg: JobPackage, input: unknown, resultUri: string): SparkStep {
  return {
    name: `lensflow ${job} ${runId}`,
    actionOnFailure: 'CONTINUE',
    hadoopJarStep: {
      jar: 'command-runner.jar',
      args: [
        'spark-submit',
        '--deploy-mode', 'client',
        '--name', `lensflow-${job}-${runId}`,
        '--py-files', `${pkg.codeUri}lensflow_spark.zip`,
        `${pkg.codeUri}jobs/${job}.py`,
        '--input', JSON.stringify(input),
        '--result', resultUri,
      ],
    },
  };
}
