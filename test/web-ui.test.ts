// The Temporal Web UI as an operator uses it, in a real headless browser (Debian's chromium driven by
// playwright-core): find a run by a Forge search attribute, open it, see its static summary and current
// details. Screenshots go to test-output/web-ui/ (kept out of git). Skipped, with a message, where no
// Chromium is installed (.ci/run installs Debian's `chromium`; FORGE_CHROMIUM names another binary).
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startRun } from '../client/runs';
import { killAndWait, ROOT, sessionId, spawnWorker, testClient } from './helpers/temporal';

jest.setTimeout(10 * 60_000);

const CANDIDATES = [process.env.FORGE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter(
  (p): p is string => !!p,
);
const BROWSER = CANDIDATES.find((p) => fs.existsSync(p));
if (!BROWSER)
  console.warn(
    `skipping the Web UI browser test: no Chromium at ${CANDIDATES.join(', ')} (apt-get install chromium, or set FORGE_CHROMIUM)`,
  );
const OUT = path.join(ROOT, 'test-output', 'web-ui');

(BROWSER ? test : test.skip)('find a run by ForgeSession in the Web UI, open it, see its summary and details', async () => {
  fs.mkdirSync(OUT, { recursive: true });
  const ui = `http://127.0.0.1:${process.env.FORGE_TEST_SERVER_UI_PORT}`;
  const worker = spawnWorker('agent');
  const client = await testClient();
  let browser: Browser | undefined;
  try {
    const id = sessionId('webui');
    const run = await startRun(client, 'agent', {
      sessionId: id,
      config: { maxEpisodes: 32, evalEpisodes: 8, environmentTypes: ['interactive'], hiddenSize: 32, numLayers: 2 },
      agents: [{ id: 'solo', architecture: 'reactive_agent' }],
    });
    await run.handle.result();

    browser = await chromium.launch({ executablePath: BROWSER, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });

    // The list, filtered by a Forge search attribute through the UI's own query URL.
    const query = `ForgeSession="${id}" AND ForgePipeline="agent"`;
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    const link = page.getByRole('link', { name: run.workflowId }).first();
    await link.waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(OUT, '1-list-filtered-by-search-attribute.png'), fullPage: true });

    // Another run's session must not match the same filter (the filter is real).
    const other = await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent('ForgeSession="no-such-session"')}`);
    expect(other?.ok()).toBe(true);
    await page.waitForTimeout(3000);
    expect(await page.getByRole('link', { name: run.workflowId }).count()).toBe(0);

    // The run's page: static summary and details (set at start), current details (set by the workflow).
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(run.workflowId)}`);
    await page.getByText(`Agent Forge · session ${id}`).first().waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(OUT, '2-run-page.png'), fullPage: true });

    // The UI renders summary and details as markdown in sandboxed frames, and fetches current details with
    // a query (answered by the worker): read the text of every frame until the current details arrive.
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.getByText('Current Details').first().waitFor({ timeout: 30_000 });
    const allText = async () =>
      (
        await Promise.all(
          page.frames().map((f) =>
            f
              .locator('body')
              .innerText()
              .catch(() => ''),
          ),
        )
      ).join('\n');
    let metadata = '';
    for (let i = 0; i < 40 && !/completed · reward/.test(metadata); i++) {
      await page.waitForTimeout(500);
      metadata = await allText();
    }
    fs.writeFileSync(path.join(OUT, 'user-metadata.txt'), metadata);
    await page.screenshot({ path: path.join(OUT, '3-user-metadata.png'), fullPage: true });
    expect(metadata).toContain(`Agent Forge · session ${id} · multi_agent_collaboration · 1 agents · 32 episodes`); // static summary
    expect(metadata).toContain('solo (reactive_agent)'); // static details
    expect(metadata).toMatch(/completed · reward/); // current details, set by the workflow at the end

    await page.getByRole('tab', { name: 'Search Attributes' }).click();
    await page.getByText('ForgeSession').first().waitFor({ timeout: 30_000 });
    const attributes = await page.locator('body').innerText();
    await page.screenshot({ path: path.join(OUT, '4-search-attributes.png'), fullPage: true });
    expect(attributes).toContain('ForgePipeline');
    expect(attributes).toContain(id);
  } finally {
    await browser?.close();
    await client.connection.close();
    await killAndWait(worker.proc, 'SIGTERM');
  }
});
