/**
 * Writes the job input and result contracts as JSON Schema files, and the shared facts as JSON, for the Python side.
 * Run with `npm run contracts`; a jest test fails when the committed files are stale.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { JobInputs } from './jobInputs';
import { JobResults } from './jobResults';
import { SHARED_FACTS } from './sharedFacts';

export const SCHEMA_DIR = join(__dirname, '..', '..', 'spark', 'lensflow_spark', 'contracts');

/** The JSON Schema text for each job, keyed by file name. */
export function renderSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  const render = (schema: z.ZodType) => JSON.stringify(z.toJSONSchema(schema, { target: 'draft-2020-12' }), null, 2) + '\n';
  for (const [job, schema] of Object.entries(JobResults)) out[`${job}-result.schema.json`] = render(schema);
  for (const [job, schema] of Object.entries(JobInputs)) out[`${job}-input.schema.json`] = render(schema);
  for (const [file, fact] of Object.entries(SHARED_FACTS)) out[file] = JSON.stringify(fact, null, 2) + '\n';
  return out;
}

if (require.main === module) {
  for (const [file, text] of Object.entries(renderSchemas())) writeFileSync(join(SCHEMA_DIR, file), text);
}
