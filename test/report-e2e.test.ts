/**
 * `nix-seal report` in a real browser: Debian's chromium driven by playwright-core (no browser
 * download), on the seed scenario built by the real Nix, and on a 10,000-path registration.
 * The page's hooks must equal what `closure`, `closure --json`, `audit --json`, `info --json` and
 * `why --json` say; searching, clicking and the keyboard must work; nothing may be requested.
 * Screenshots (light and dark) are kept in a temp dir printed as a diagnostic.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test, type TestContext } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { isOneLineError, runCli } from './support/cli.js';
import { writeRandomRegistration } from './support/random-registration.js';
import { seedCli, withSeedScenario } from './support/seed-scenario.js';
import { requireTools } from './support/tools.js';

const seed = withSeedScenario('nix-seal-report-');
let artifactsDir: string | undefined;
/** The kept temp dir (screenshots, the seed page), made on first use. */
const artifacts = (): string => (artifactsDir ??= mkdtempSync(join(tmpdir(), 'nix-seal-report-e2e-')));
after(() => seed.cleanup());

/** Opens the page from file://, recording every request; resolves when the page says it is ready. */
async function open(ctx: BrowserContext, file: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
  const page = await ctx.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
  return { page, requests, errors };
}

const json = (r: { code: number; stdout: string; stderr: string }): any => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

test('seed scenario: hooks equal closure, closure --json, audit --json and info --json; search, click, keys; no request', async (t: TestContext) => {
  const s = seed.need(t, 'chromium');
  if (!s) return;
  const cli = (args: string[]) => seedCli(s, ...args);
  const seal = ['--seal', '*.iso'];
  const file = join(artifacts(), 'seed.html');
  const made = cli(['report', s.launcher, ...seal, '--audit', '-o', file]);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /wrote .*seed\.html/);

  const closureLines = cli(['closure', s.launcher, ...seal]).stdout.split('\n').filter((l) => l !== '');
  const closureJson = json(cli(['closure', s.launcher, ...seal, '--json']));
  const auditJson = json(cli(['audit', s.launcher, ...seal, '--json']));
  const infoJson = json(cli(['info', s.launcher, ...seal, '--json']));

  const browser = await launchChromium();
  const ctx = browser.ctx;
  try {
    const { page, requests, errors } = await open(ctx, file);
    // Hooks: every kept path, in closure order.
    const kept = await page.$$eval('[data-path]', (els) => els.map((e) => e.getAttribute('data-path')));
    assert.deepEqual(kept, closureLines);
    // Every seal with what it erased, and the audit's verdicts.
    const seals = await page.$$eval('[data-seal]', (els) =>
      els.map((e) => ({
        path: e.getAttribute('data-seal'),
        erased: [...e.querySelectorAll('[data-erased]')].map((x) => ({ path: x.getAttribute('data-erased'), verdict: x.getAttribute('data-verdict') })),
      })),
    );
    assert.deepEqual(
      seals.map((x) => ({ path: x.path, erased: x.erased.map((e) => e.path) })),
      closureJson.seals.map((x: any) => ({ path: x.path, erased: x.erased })),
    );
    assert.deepEqual(
      seals.map((x) => ({ path: x.path, erased: x.erased })),
      auditJson.seals.map((x: any) => ({ path: x.path, erased: x.erased.map((e: any) => ({ path: e.path, verdict: e.verdict })) })),
    );
    assert.deepEqual(seals.map((x) => x.path), [s.iso]);
    assert.deepEqual(seals[0]!.erased.map((e) => e.path).sort(), [...s.isoOnly].sort());
    // The totals are info --json's.
    const totals = await page.$$eval('[data-total]', (els) =>
      Object.fromEntries(els.map((e) => [e.getAttribute('data-total'), { count: Number(e.getAttribute('data-count')), narSize: Number(e.getAttribute('data-nar-size')) }])),
    );
    for (const k of ['full', 'sealed', 'erased']) assert.deepEqual(totals[k], infoJson[k], k);
    const cardBytes = await page.$$eval('[data-seal]', (els) =>
      els.map((e) => ({ erased: e.querySelector('[data-bytes=erased]')!.textContent, exclusive: e.querySelector('[data-bytes=exclusive]')!.textContent })),
    );
    const asBytes = (n: number): string => `${n.toLocaleString('en-US')} bytes`;
    assert.deepEqual(cardBytes, infoJson.seals.map((x: any) => ({ erased: asBytes(x.erased.narSize), exclusive: asBytes(x.exclusive.narSize) })));
    assert.ok((await page.textContent('#source'))!.includes(s.env.stateDir), 'the page names the store it came from');
    assert.deepEqual(await page.$$eval('[data-root]', (els) => els.map((e) => e.getAttribute('data-root'))), [s.launcher]);

    // The list holds the full closure; typing filters it.
    assert.equal(await page.textContent('#count'), '8 of 8 paths');
    await page.fill('#search', 'bash');
    assert.equal(await page.textContent('#count'), '1 of 8 paths');
    const shown = await page.$$eval('#list .row', (els) => els.map((e) => e.querySelector('span')!.getAttribute('title')));
    assert.deepEqual(shown, [s.bash]);

    // Clicking an erased path shows the seal that cut it off and the chain `why` prints.
    await page.click('#list .row');
    const whyBash = json(cli(['why', s.launcher, s.bash, ...seal, '--json']));
    assert.equal(whyBash.status, 'erased');
    const chains = async (): Promise<{ seal: string; chain: string[] }[]> =>
      page.$$eval('#detail ol.chain', (els) =>
        els.map((e) => ({ seal: e.getAttribute('data-chain-seal')!, chain: [...e.querySelectorAll('[data-chain-path]')].map((x) => x.getAttribute('data-chain-path')!) })),
      );
    assert.deepEqual(await chains(), whyBash.erasedBy.map((e: any) => ({ seal: e.seal, chain: e.chain })));
    assert.equal(await page.getAttribute('#detail [data-detail-verdict]', 'data-detail-verdict'), auditJson.seals[0].erased.find((e: any) => e.path === s.bash).verdict);

    // A kept path: the shortest chain in the sealed closure, as `why` gives it.
    await page.fill('#search', 'glibc');
    await page.click('#list .row');
    const whyGlibc = json(cli(['why', s.launcher, s.glibc, ...seal, '--json']));
    assert.equal(whyGlibc.status, 'kept');
    assert.deepEqual(await chains(), [{ seal: '', chain: whyGlibc.chain }]);

    // Keyboard: from the search box into the list, then End and ArrowUp move the selection.
    await page.fill('#search', '');
    await page.focus('#search');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'list');
    await page.keyboard.press('End');
    const last = await page.getAttribute('#detail', 'data-shown');
    await page.keyboard.press('ArrowUp');
    const before = await page.getAttribute('#detail', 'data-shown');
    assert.ok(last && before && last !== before, 'the arrow keys move the selection');
    assert.equal(await page.getAttribute('#list', 'aria-activedescendant'), 'row-6');

    // Sorting by name puts the rows in name order.
    await page.click('.head button[data-key=name]');
    const names = await page.$$eval('#list .row span.mono', (els) => els.map((e) => e.textContent!));
    assert.deepEqual(names, [...names].sort());
    assert.equal(names.length, 8);

    // The treemap accounts for every path of the full closure: drawn, or inside a block drawn
    // whole (a dominator too small to split), with a text alternative.
    const cells = await page.$$eval('svg.treemap rect[data-i]', (els) => els.map((e) => ({ i: Number(e.getAttribute('data-i')), kind: e.getAttribute('data-kind') })));
    const data = JSON.parse((await page.textContent('#report-data'))!);
    const drawn = new Set(cells.map((c) => c.i));
    const whole = new Set(cells.filter((c) => c.kind === 'subtree').map((c) => c.i));
    const rest = await page.$$eval('svg.treemap rect[data-rest]', (els) => els.length);
    assert.equal(rest, 0, 'eight paths need no shared block');
    for (let i = 0; i < data.names.length; i++) {
      let v = i;
      while (v >= 0 && !whole.has(v)) v = data.idom[v];
      assert.ok(drawn.has(i) || v >= 0, `${data.names[i]} is in the treemap`);
    }
    assert.equal(data.names.length, 8);
    assert.ok(drawn.has(data.names.findIndex((n: string) => s.iso.endsWith(n))), 'the seal has its block');
    assert.ok((await page.getAttribute('svg.treemap', 'aria-labelledby'))!.includes('map-desc'));

    await page.screenshot({ path: join(artifacts(), 'seed-light.png'), fullPage: true });
    assert.deepEqual(requests, [pathToFileURL(file).href], 'the page itself and nothing else');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
  const dark = await launchChromium({ colorScheme: 'dark' });
  try {
    const { page, requests } = await open(dark.ctx, file);
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    assert.equal(bg, 'rgb(21, 23, 27)', 'the dark scheme applies');
    await page.screenshot({ path: join(artifacts(), 'seed-dark.png'), fullPage: true });
    assert.deepEqual(requests, [pathToFileURL(file).href]);
  } finally {
    await dark.close();
  }
  t.diagnostic(`screenshots: ${artifacts()}`);
});

test('a 10,000-path closure renders and is searchable', async (t: TestContext) => {
  if (!requireTools(t, 'chromium')) return;
  const reg = writeRandomRegistration(join(artifacts(), 'big.reg'), 10_000, { seed: 7 });
  const store = `registration:${reg.file}`;
  const file = join(artifacts(), 'big.html');
  const r = runCli(['report', reg.root, '--store', store, '--seal', '*.iso', '-o', file]);
  assert.equal(r.code, 0, r.stderr);
  const closureLines = runCli(['closure', reg.root, '--store', store, '--seal', '*.iso']).stdout.split('\n').filter((l) => l !== '');
  const browser = await launchChromium();
  const ctx = browser.ctx;
  try {
    const t0 = Date.now();
    const { page, requests, errors } = await open(ctx, file);
    t.diagnostic(`${(statSync(file).size / 1e6).toFixed(2)} MB, interactive after ${Date.now() - t0} ms`);
    assert.equal(await page.textContent('#count'), '10000 of 10000 paths');
    assert.deepEqual(await page.$$eval('[data-path]', (els) => els.map((e) => e.getAttribute('data-path'))), closureLines);
    // Only the visible rows exist.
    assert.ok((await page.$$('#list .row')).length < 100);
    const q = 'pkg-77';
    await page.fill('#search', q);
    const expected = reg.paths.filter((p) => p.slice(p.lastIndexOf('/') + 1).includes(q)).length;
    assert.ok(expected > 10);
    assert.equal(await page.textContent('#count'), `${expected} of 10000 paths`);
    await page.click('#list .row');
    assert.ok((await page.$$('#detail ol.chain li')).length >= 2, 'a chain from the root');
    await page.screenshot({ path: join(artifacts(), 'big-light.png') });
    t.diagnostic(`screenshot: ${join(artifacts(), 'big-light.png')}`);
    assert.deepEqual(requests, [pathToFileURL(file).href]);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    rmSync(reg.file, { force: true });
    rmSync(file, { force: true });
  }
});

test('report: written atomically; a missing -o or an unwritable target is a one-line error and leaves nothing', (t: TestContext) => {
  const dir = mkdtempSync(join(tmpdir(), 'nix-seal-report-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const reg = writeRandomRegistration(join(dir, 'g.reg'), 50, { seed: 3, sealEvery: 10 });
  const store = `registration:${reg.file}`;
  const ok = runCli(['report', reg.root, '--store', store, '--seal', '*.iso', '-o', join(dir, 'r.html'), '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const r = JSON.parse(ok.stdout);
  assert.equal(r.file, join(dir, 'r.html'));
  assert.equal(r.bytes, statSync(join(dir, 'r.html')).size);
  assert.equal(r.paths, 50);
  assert.deepEqual(readdirSync(dir).sort(), ['g.reg', 'r.html'], 'no temporary file left');

  const noOut = runCli(['report', reg.root, '--store', store]);
  assert.equal(noOut.code, 2);
  assert.ok(isOneLineError(noOut), noOut.stderr);
  const bad = runCli(['report', reg.root, '--store', store, '-o', join(dir, 'missing', 'r.html')]);
  assert.equal(bad.code, 2);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.match(bad.stderr, /^nix-seal: Cannot write .*missing\/r\.html: directory .* does not exist/);
  const isDir = runCli(['report', reg.root, '--store', store, '-o', dir]);
  assert.equal(isDir.code, 2);
  assert.match(isDir.stderr, /it is a directory/);
  assert.deepEqual(readdirSync(dir).sort(), ['g.reg', 'r.html']);
});
