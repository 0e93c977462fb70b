// The dashboard's speed, measured in Chromium (not a timed test): the report page of an account
// of 100,000 commenters (largest contentful paint, and the API calls behind it), and the upload
// of a 40 MB export against `audiencelens import` of an export of the same size, in one run.
//   node tests/browser/bench.mjs BINARY   (scripts/bench-dashboard builds the binary and calls this)

import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const binary = process.argv[2];
const runs = Number(process.env.RUNS || 5);
const server = spawn(binary, ['bench', 'dashboard'], { stdio: ['pipe', 'pipe', 'inherit'] });
const first = await new Promise((resolve, reject) => {
  const lines = readline.createInterface({ input: server.stdout });
  lines.once('line', resolve);
  server.once('exit', (code) => reject(new Error(`bench dashboard exited ${code}`)));
});
const env = JSON.parse(first);
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const load = () => os.loadavg()[0].toFixed(2);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function signedIn() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${env.base_url}/#/login`);
  await page.fill('#f-email', env.email);
  await page.fill('#f-password', env.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('h1:has-text("Your accounts")');
  return { ctx, page };
}

try {
  console.log(`dashboard benchmark: load average ${load()} at the start; ${env.commenters.toLocaleString('en-US')} commenters; export ${(env.export_bytes / 1e6).toFixed(1)} MB`);
  // The report page, loaded afresh each time: LCP and the API calls made until the report shows.
  const lcps = [];
  const ready = [];
  let calls = [];
  for (let i = 0; i < runs; i += 1) {
    const { ctx, page } = await signedIn();
    await page.goto('about:blank');
    calls = [];
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/api/v1/')) calls.push(new URL(r.url()).pathname); });
    const started = Date.now();
    await page.goto(`${env.base_url}/#/accounts/${env.report_account}`);
    await page.waitForSelector('h2:has-text("Audience of @")');
    ready.push(Date.now() - started);
    const lcp = await page.evaluate(() => new Promise((resolve) => {
      new PerformanceObserver((list) => {
        const entries = list.getEntries();
        resolve(entries[entries.length - 1].startTime);
      }).observe({ type: 'largest-contentful-paint', buffered: true });
    }));
    lcps.push(lcp);
    await ctx.close();
  }
  console.log(`  report page, ${runs} fresh loads: largest contentful paint median ${median(lcps).toFixed(0)} ms (range ${Math.min(...lcps).toFixed(0)}-${Math.max(...lcps).toFixed(0)}); report shown in ${median(ready)} ms; API calls: ${calls.length} (${calls.join(', ')})`);

  // The upload against the command line, on exports of the same size that share nothing.
  const importStarted = process.hrtime.bigint();
  const imported = spawnSync(binary, ['import', env.import_file, '--account', env.import_handle, '--user', env.email], {
    env: { ...process.env, AUDIENCELENS__DATABASE__URL: env.database_url, AUDIENCELENS__LOG__FILTER: 'warn' },
    encoding: 'utf8',
  });
  const importSecs = Number(process.hrtime.bigint() - importStarted) / 1e9;
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
  const { ctx, page } = await signedIn();
  await page.goto(`${env.base_url}/#/accounts/${env.upload_account}/upload`);
  await page.setInputFiles('#upload-files', env.upload_file);
  const uploadStarted = Date.now();
  await page.click('button:has-text("Upload and analyse")');
  await page.waitForSelector('h2:has-text("What the files held"), .upload-result .notice.error', { timeout: 600000 });
  const uploadSecs = (Date.now() - uploadStarted) / 1000;
  const refused = await page.$('.upload-result .notice.error');
  if (refused) throw new Error(`upload refused: ${await refused.textContent()}`);
  await ctx.close();
  const mbs = (s) => (env.export_bytes / 1e6 / s).toFixed(1);
  console.log(`  audiencelens import: ${importSecs.toFixed(2)} s (${mbs(importSecs)} MB/s); upload from the browser: ${uploadSecs.toFixed(2)} s (${mbs(uploadSecs)} MB/s): ${(importSecs / uploadSecs * 100).toFixed(0)} % of the command line's speed`);
  console.log(`  load average ${load()} at the end`);
} finally {
  await browser.close();
  server.stdin.end();
  await new Promise((resolve) => server.once('exit', resolve));
}
