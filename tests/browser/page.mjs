// What the browser scripts share: the report line, Chromium, and a notebook driven as a person
// drives it (click into the last cell, type, Shift+Enter, read the output area).
import { chromium } from "playwright-core";

/** Prints one check as a JSON line for the pytest that runs the script. */
export const report = (check, ok, detail = "") => console.log(JSON.stringify({ check, ok, detail: String(detail) }));

/** Debian's headless Chromium (or $CHROMIUM) and a page of 1400 × 1000. */
export async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(120_000);
  return { browser, page };
}

/** A notebook of `page`: run a cell, read and wait for its output. */
export function notebook(page) {
  async function runCell(code) {
    const cells = page.locator(".jp-NotebookPanel:visible .jp-Cell");
    // Pin the cell by index: `last()` would follow the new cell that Shift+Enter adds.
    const cell = cells.nth((await cells.count()) - 1);
    await cell.locator(".cm-content").click();
    await page.keyboard.press("Control+a");
    await page.keyboard.insertText(code);
    await page.keyboard.press("Shift+Enter");
    return cell;
  }

  async function outputText(cell) {
    return (await cell.locator(".jp-OutputArea").innerText()).trim();
  }

  async function waitForOutput(cell, predicate, timeout = 120_000) {
    const end = Date.now() + timeout;
    let text = "";
    while (Date.now() < end) {
      text = await outputText(cell);
      if (predicate(text)) return text;
      await page.waitForTimeout(500);
    }
    throw new Error(`output never matched; last: ${text.slice(0, 400)}`);
  }

  return { runCell, outputText, waitForOutput };
}

/** Opens JupyterLab at `base`; returns the launcher's "Rust (cluster)" card. */
export async function openLauncher(page, base, token) {
  await page.goto(`${base}/lab?token=${token}`);
  const card = page.locator('.jp-LauncherCard[title="Rust (cluster)"]').first();
  await card.waitFor();
  return card;
}

/** Opens a new notebook from the launcher's `card` and waits until its kernel is idle. */
export async function startNotebook(page, card) {
  await card.click();
  await page.locator(".jp-NotebookPanel .jp-Cell").first().waitFor();
  // The kernel is connected and idle (the status bar says so) before the first cell runs.
  await page.getByText("Rust (cluster) | Idle").waitFor();
}
