/**
 * The run's full result document in S3 (`runs/<runId>/results/pipeline.json`): every job's result,
 * which the workflow's compact summary points at (`resultUri`) and `lensflow result --json` prints.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseS3Uri } from '../contracts/s3';
import { getObjectText } from './s3Client';

export function makeWriteResultDocument(s3: S3Client) {
  return async function writeResultDocument(input: { uri: string; document: unknown }): Promise<void> {
    const { bucket, key } = parseS3Uri(input.uri);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(input.document, null, 2), ContentType: 'application/json' }));
  };
}

export async function readResultDocument(s3: S3Client, uri: string): Promise<unknown> {
  const { bucket, key } = parseS3Uri(uri);
  const got = await getObjectText(s3, bucket, key);
  if (!got) throw new Error(`the run's result document ${uri} is not in S3: was the bucket or prefix changed, or the run's folder deleted?`);
  return JSON.parse(got.text);
}
