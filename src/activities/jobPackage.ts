/**
 * Publishes the PySpark job package to S3 under a content-addressed prefix
 * (`<prefix>/code/<hash>/`), so a step always names the exact code it runs and re-publishing the
 * same code uploads nothing. The EMR bootstrap script and the pins it installs travel with it, so
 * a cluster's Python environment always matches the code its steps run.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Settings } from '../settings';
import { isNotFound } from './s3Client';
import type { JobPackage } from './sparkSteps';

/** Paths under the code prefix of the EMR bootstrap script and the pins it installs. */
export const BOOTSTRAP_SCRIPT = 'bootstrap/emr-bootstrap-venv.sh';
export const REQUIREMENTS_FILE = 'bootstrap/requirements.txt';
export const CONSTRAINTS_FILE = 'bootstrap/constraints.txt';

/** Reads the package zip and entry scripts and returns them keyed by their path under the code prefix. */
async function packageFiles(spark: Settings['spark']): Promise<Map<string, Buffer>> {
  if (!existsSync(spark.packageZip)) {
    throw new Error(`${spark.packageZip} is missing: run \`make build\` to package the Spark jobs`);
  }
  const files = new Map<string, Buffer>([
    ['lensflow_spark.zip', await readFile(spark.packageZip)],
    [BOOTSTRAP_SCRIPT, await readFile(spark.emrBootstrap)],
    [REQUIREMENTS_FILE, await readFile(spark.requirements)],
    [CONSTRAINTS_FILE, await readFile(spark.constraints)],
  ]);
  for (const name of (await readdir(spark.jobsDir)).filter((n) => n.endsWith('.py')).sort()) {
    files.set(`jobs/${name}`, await readFile(join(spark.jobsDir, name)));
  }
  return files;
}

/** Uploads the package if this exact content is not in S3 yet; returns its code URI. */
export async function publishJobPackage(s3: S3Client, spark: Settings['spark'], bucket: string, prefix: string): Promise<JobPackage> {
  const files = await packageFiles(spark);
  const hash = createHash('sha256');
  for (const [name, body] of files) hash.update(name).update('\0').update(body).update('\0');
  const keyPrefix = `${prefix}/code/${hash.digest('hex').slice(0, 16)}/`;
  for (const [name, body] of files) {
    const key = keyPrefix + name;
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
  }
  return { codeUri: `s3://${bucket}/${keyPrefix}` };
}
