/**
 * Spark settings both local paths apply: spark-submit steps on local Spark (`localSparkConf`) and
 * the warm engine's session (`session.local_session` in Python), so that both bind, commit and fit
 * alike. Exported as `spark-settings.json` for the Python side.
 */
export const SPARK_SETTINGS = {
  /** Everything binds to 127.0.0.1; no UI port. */
  local: {
    'spark.driver.host': '127.0.0.1',
    'spark.driver.bindAddress': '127.0.0.1',
    'spark.ui.enabled': 'false',
  },
  /**
   * The S3A magic committer (its classes come with the s3a jars): tasks write straight to their
   * final keys as pending multipart uploads that the job commit completes, so nothing half-written
   * is ever visible.
   */
  committer: {
    'spark.hadoop.fs.s3a.committer.name': 'magic',
    'spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a': 'org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory',
    'spark.sql.sources.commitProtocolClass': 'org.apache.spark.internal.io.cloud.PathOutputCommitProtocol',
    'spark.sql.parquet.output.committer.class': 'org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter',
  },
  /** With an S3 endpoint of our own (versitygw here): path-style addressing. */
  s3Endpoint: {
    'spark.hadoop.fs.s3a.path.style.access': 'true',
  },
  /** ALS user/item blocks = local cores, so both local paths fit the same seeded models. */
  alsBlocksConf: 'spark.lensflow.alsBlocks',
} as const;
