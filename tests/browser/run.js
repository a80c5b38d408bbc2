const { chromium } = require('playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [
    '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage();
  let done;
  const finished = new Promise(r => done = r);
  page.on('console', m => { const t = m.text(); if (t.includes('HARNESS') || m.type() === 'error' || m.type() === 'warning') console.log(m.type(), t.slice(0, 400)); if (t.includes('HARNESS DONE')) done(); });
  page.on('pageerror', e => console.log('PAGEERROR', e.message));
  await page.goto(process.argv[2]);
  await Promise.race([finished, new Promise(r => setTimeout(r, 40000))]);
  await browser.close();
})();
