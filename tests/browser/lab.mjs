// The person's view: JupyterLab in headless Chromium, driven by playwright-core.
//
//   node lab.mjs BASE_URL TOKEN OUT_DIR [--cluster]
//
// Prints one JSON line per check ({"check": ..., "ok": true|false, "detail": ...}) for the pytest
// that runs it, and saves screenshots in OUT_DIR.
import fs from "node:fs";
import path from "node:path";

import { notebook, openBrowser, openLauncher, report, startNotebook } from "./page.mjs";

const [base, token, outDir, ...flags] = process.argv.slice(2);
const withCluster = flags.includes("--cluster");
fs.mkdirSync(outDir, { recursive: true });

const { browser, page } = await openBrowser();
const { runCell, waitForOutput } = notebook(page);

try {
  const card = await openLauncher(page, base, token);
  report("launcher has Rust (cluster)", true);
  const logoOk = await card.locator("img").evaluate((img) => img.complete && img.naturalWidth > 0).catch(() => false);
  report("launcher logo loaded", logoOk);
  await page.screenshot({ path: path.join(outDir, "launcher.png") });

  await startNotebook(page, card);

  const sumCell = await runCell("let v: Vec<u64> = (1..=10).collect();\nv.iter().sum::<u64>()");
  await waitForOutput(sumCell, (t) => t.includes("55"));
  report("Rust cell result shown", true);

  // Syntax highlighting: the `let` keyword is coloured unlike plain text.
  const highlighted = await sumCell.locator(".cm-line").first().evaluate((line) => {
    const spans = [...line.querySelectorAll("span")];
    const kw = spans.find((s) => s.textContent === "let");
    if (!kw) return false;
    return getComputedStyle(kw).color !== getComputedStyle(line).color;
  });
  report("Rust syntax highlighting", highlighted);

  const magicCell = await runCell("%lsmagic");
  await waitForOutput(magicCell, (t) => t.includes("%cluster"));
  report("%lsmagic lists %cluster", true);
  await page.screenshot({ path: path.join(outDir, "notebook.png"), fullPage: true });

  // A widget of the %%python sub-kernel is drawn, and follows Python and the person both ways.
  const widgetCell = await runCell("%%python\nimport ipywidgets as w\nslider = w.IntSlider(value=3, description='level')\nslider");
  const readout = widgetCell.locator(".widget-readout");
  await readout.waitFor();
  report("%%python widget drawn", (await readout.innerText()).trim() === "3", await readout.innerText());
  const setCell = await runCell("%python slider.value = 8");
  await waitForOutput(setCell, () => true);
  await page.waitForFunction((el) => el.textContent.trim() === "8", await readout.elementHandle(), { timeout: 30_000 })
    .then(() => report("widget follows Python", true), (e) => report("widget follows Python", false, e));
  await readout.click();
  await page.keyboard.press("Control+a");
  await page.keyboard.type("5");
  await page.keyboard.press("Enter");
  const readCell = await runCell("%python slider.value");
  const read = await waitForOutput(readCell, (t) => /\d/.test(t));
  report("Python follows the widget", read.includes("5"), read);
  await widgetCell.screenshot({ path: path.join(outDir, "widget.png") });

  if (withCluster) {
    const upCell = await runCell("%cluster up browser");
    const first = await waitForOutput(upCell, (t) => t.includes("browser"));
    report("card shown before the workers joined", !/3\s*\/\s*3 workers/.test(first), first.split("\n")[0]);
    // Without re-running the cell, the card turns to running with every worker.
    const text = await waitForOutput(upCell, (t) => /running/i.test(t) && /3\s*\/\s*3 workers/.test(t), 120_000);
    report("card updated in place to running with workers", true, text.split("\n")[0]);
    const cardBox = upCell.locator(".jp-OutputArea-output").last();
    await cardBox.screenshot({ path: path.join(outDir, "card-light.png") });
    // The dark theme, chosen as a person would: Settings → Theme → JupyterLab Dark.
    await page.locator(".lm-MenuBar-itemLabel", { hasText: "Settings" }).click();
    await page.locator(".lm-Menu-itemLabel", { hasText: /^Theme$/ }).hover();
    await page.locator(".lm-Menu-itemLabel", { hasText: /^JupyterLab Dark$/ }).click();
    await page.locator('body[data-jp-theme-name="JupyterLab Dark"]').waitFor({ state: "attached" });
    await page.waitForTimeout(1000);
    await cardBox.screenshot({ path: path.join(outDir, "card-dark.png") });
    // Legible: the WCAG contrast of the card's text against what is behind it is at least 4.5.
    const contrast = await cardBox.evaluate((el) => {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const text = el.querySelector("[class^=rck], [class*=' rck']") || el;
      let bg = text;
      while (bg && (getComputedStyle(bg).backgroundColor === "rgba(0, 0, 0, 0)" || getComputedStyle(bg).backgroundColor === "transparent")) {
        bg = bg.parentElement;
      }
      const [a, b] = [lum(rgb(getComputedStyle(text).color)), lum(rgb(getComputedStyle(bg || document.body).backgroundColor))];
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    });
    report("card legible in the dark theme", contrast >= 4.5, `contrast ${contrast.toFixed(1)}`);
    const cancelCell = await runCell("%cluster cancel browser");
    await waitForOutput(cancelCell, (t) => /finished/i.test(t), 120_000);
    report("cancel shows the finished card", true);
  }
} catch (e) {
  report("browser session", false, e.stack || e);
  await page.screenshot({ path: path.join(outDir, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
