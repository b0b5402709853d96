/**
 * JIT tiers for the JVMs a test starts for one small run and then stops (the EMR test server's
 * steps, a suite's own warm engine, a test cluster's executors): C1 only. Such a JVM runs seconds
 * of test-sized work, and C2's compiles cost it more CPU than they win back
 * (bench/results/test-jit.md, bench/results/test-time.md). The stack's long-lived engine and
 * pytest's session keep the default tiers: over a whole suite C2 pays for itself there.
 */
export const SHORT_LIVED_JIT = '-XX:TieredStopAtLevel=1';

/** `SPARK_SUBMIT_OPTS` for a short-lived Spark JVM: the environment's (the class archive) plus C1 only. */
export function shortLivedSubmitOpts(env: NodeJS.ProcessEnv = process.env): string {
  return [env.SPARK_SUBMIT_OPTS, SHORT_LIVED_JIT].filter(Boolean).join(' ');
}
