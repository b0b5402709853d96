/**
 * A finished run as a person meets it: `lensflow result` prints a one-screen summary (and `--json`
 * the full document) with no Node warning; the Web UI shows the run's status, its activities by
 * name and a result under 8 KB; the HTML report renders its model table. The pages are opened in
 * Debian's Chromium through playwright-core (`make setup` installs chromium); screenshots are saved
 * to test-artifacts/. Reuses a completed run on the stack (the pipeline e2e suite's) or runs a tiny one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { chromium, type BrowserContext } from 'playwright-core';
import { PipelineSummary } from '../src/contracts/summary';
import { workflowIdFor, type TrainingPipelineResult } from '../src/contracts/pipeline';
import { webUiLink } from '../src/settings';
import { stackSettings, uniquePrefix } from './helpers/stack';

jest.setTimeout(15 * 60_000);
const settings = stackSettings();
const repo = join(__dirname, '..');
const cli = (args: string[]) => spawnSync('node', [join(repo, 'dist', 'cli', 'main.js'), ...args], { cwd: repo, encoding: 'utf8', timeout: 14 * 60_000 });
const artifacts = join(repo, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';
// What the AWS SDK prints on a Node it will stop supporting (it did on Node 20).
const NODE_WARNING = /NodeVersionSupportWarning|DeprecationWarning|will require node/i;

let client: Client;
let runId: string;
let summary: PipelineSummary;
let browser: BrowserContext;
let userDataDir: string;

/** The newest completed run whose result is a summary, or a tiny run started here (one grid point). */
async function finishedRun(): Promise<{ runId: string; summary: PipelineSummary }> {
  // Only runs started the way people start them: the workflow suite's mocked runs (ids `test-…`)
  // complete with summaries too, but nothing of theirs exists in S3 or under `lensflow-<runId>`.
  const query = `WorkflowType = 'trainingPipeline' AND ExecutionStatus = 'Completed' AND WorkflowId STARTS_WITH 'lensflow-'`;
  let seen = 0;
  for await (const wf of client.workflow.list({ query })) {
    if (++seen > 20) break;
    const parsed = PipelineSummary.safeParse(await client.workflow.getHandle(wf.workflowId, wf.runId).result());
    // ml-latest-small's: other suites finish runs of other datasets (the cluster test's synthetic one).
    if (parsed.success && wf.workflowId === workflowIdFor(parsed.data.runId) && parsed.data.outputs.report && parsed.data.dataset === 'ml-latest-small') return { runId: parsed.data.runId, summary: parsed.data };
  }
  const id = `ml-latest-small-browser-${Date.now().toString(36)}`;
  const grid = JSON.stringify({ rank: [4], regParam: [0.1], maxIter: [3] });
  const split = JSON.stringify({ kind: 'random', testFraction: 0.2, cvFolds: 2, seed: 7 });
  const run = cli(['run', '--run-id', id, '--grid', grid, '--split', split, '--prefix', uniquePrefix('browser')]);
  expect({ status: run.status, stderr: run.stderr }).toMatchObject({ status: 0 });
  expect(run.stdout).toContain(`run ${id} (ml-latest-small): completed`);
  return { runId: id, summary: PipelineSummary.parse(await client.workflow.getHandle(`lensflow-${id}`).result()) };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make setup\` (it installs Debian's chromium)`);
  client = new Client({ connection: await Connection.connect({ address: settings.temporal.address }) });
  ({ runId, summary } = await finishedRun());
  mkdirSync(artifacts, { recursive: true });
  userDataDir = mkdtempSync(join(tmpdir(), 'lensflow-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await client?.connection.close();
});

test('the project runs on the Node that package.json pins', () => {
  const pinned = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.node;
  expect(spawnSync('node', ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(`v${pinned}`);
});

test('lensflow result prints a one-screen summary; --json the full document; no Node warning', () => {
  const short = cli(['result', runId]);
  expect({ status: short.status, stderr: short.stderr }).toEqual({ status: 0, stderr: '' });
  const lines = short.stdout.trimEnd().split('\n');
  expect(lines.length).toBeLessThanOrEqual(40);
  expect(lines[0]).toMatch(new RegExp(`^run ${runId} \\(ml-latest-small\\): completed in `));
  for (const model of Object.keys(summary.test)) expect(short.stdout).toMatch(new RegExp(`^${model}\\b.*\\d`, 'm'));
  expect(short.stdout).toContain(`Web UI:  ${webUiLink(settings, `lensflow-${runId}`)}`);

  const full = cli(['result', runId, '--json']);
  expect(full.status).toBe(0);
  expect(full.stderr).not.toMatch(NODE_WARNING);
  const doc = JSON.parse(full.stdout) as TrainingPipelineResult;
  // The summary counts every grid point: ALS's and each searched family's.
  expect(doc.details.grid.length + (doc.families?.grid.length ?? 0)).toBe(summary.gridPoints);
  expect(doc.test).toEqual(summary.test);
});

test('the Web UI shows the run completed, its activities by name, and a result under 8 KB', async () => {
  const history = await client.workflow.getHandle(`lensflow-${runId}`).fetchHistory();
  const completed = history.events!.find((e) => e.workflowExecutionCompletedEventAttributes)!;
  const resultBytes = completed.workflowExecutionCompletedEventAttributes!.result!.payloads!.reduce((n, p) => n + (p.data?.length ?? 0), 0);
  expect(resultBytes).toBeGreaterThan(0);
  expect(resultBytes).toBeLessThan(8192);

  const page = await browser.newPage();
  await page.goto(webUiLink(settings, `lensflow-${runId}`), { waitUntil: 'networkidle' });
  await page.getByText(/^completed$/i).first().waitFor(); // the status badge
  await page.getByText(summary.resultUri).first().waitFor(); // the compact result, in the Result panel
  await page.screenshot({ path: join(artifacts, `webui-${runId}.png`), fullPage: true });

  await page.getByText('Event History').first().click();
  await page.getByText('Compact', { exact: true }).click(); // one row per activity: every one on the first page
  // Locally every Spark job is an activity of the warm engine, named after the job.
  const activities = ['stageDataset', 'claimRunId', 'clean', 'als_point', ...(summary.registry ? ['registerModel'] : []), 'writeResultDocument'];
  for (const activity of activities) await page.getByText(activity, { exact: true }).first().waitFor();
  await page.screenshot({ path: join(artifacts, `webui-history-${runId}.png`), fullPage: true });
  await page.close();
});

test('the HTML report renders its rating and ranking tables with every model the evaluation scored', async () => {
  const out = join(artifacts, `report-${runId}.html`);
  const saved = cli(['report', runId, '--out', out]);
  expect({ status: saved.status, stderr: saved.stderr }).toEqual({ status: 0, stderr: '' });
  const page = await browser.newPage();
  await page.goto(`file://${out}`);
  // The rating table has the models that predict ratings, the ranking table every model.
  const tables = page.locator('table', { has: page.locator('th', { hasText: /^model$/ }) });
  await tables.first().waitFor();
  expect(await tables.count()).toBe(2);
  const ratingRows = await tables.nth(0).locator('tbody tr').allInnerTexts();
  const rankingRows = await tables.nth(1).locator('tbody tr').allInnerTexts();
  expect(ratingRows).toHaveLength(Object.values(summary.test).filter((m) => m.rmse !== null).length);
  expect(rankingRows).toHaveLength(Object.keys(summary.test).length);
  for (const row of [...ratingRows, ...rankingRows]) expect(row).toMatch(/\d\.\d/);
  // Every figure's image decoded.
  const images = await page.locator('figure img').evaluateAll((imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
  expect(images.length).toBeGreaterThan(0);
  for (const width of images) expect(width).toBeGreaterThan(0);
  await page.screenshot({ path: join(artifacts, `report-${runId}.png`), fullPage: true });
  await page.close();
});
