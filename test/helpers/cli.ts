/** The `lensflow` CLI as the tests run it: the built `dist/cli/main.js`, as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const repo = join(__dirname, '..', '..');
export const cliPath = join(repo, 'dist', 'cli', 'main.js');

/**
 * `lensflow <args>` as a child process that does not block the event loop (unlike spawnSync), so
 * jest's timeouts and whatever else the suite runs beside it keep going. Never rejects: a failure
 * is the status and stderr. `timeoutMs` SIGTERMs a run that hangs.
 */
export function runCli(
  args: string[],
  { env = process.env, timeoutMs }: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn('node', [cliPath, ...args], { cwd: repo, env, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
