// JupyterLab inside a SLURM job, as JupyterHub's batchspawner runs it: a notebook starts a Dask
// cluster in that job's own allocation, opens its dashboard through JupyterLab, then starts a
// batch cluster, cancels both and shuts its kernel down.
//
//   node lab-in-job.mjs BASE_URL TOKEN OUT_DIR
//
// Prints one JSON line per check (see page.mjs) and saves screenshots in OUT_DIR; the pytest that
// runs it checks SLURM's side (squeue, scontrol) from the details.
import fs from "node:fs";
import path from "node:path";

import { notebook, openBrowser, openLauncher, report, startNotebook } from "./page.mjs";

const [base, token, outDir] = process.argv.slice(2);
fs.mkdirSync(outDir, { recursive: true });

const { browser, page } = await openBrowser();
const { runCell, waitForOutput } = notebook(page);

try {
  await startNotebook(page, await openLauncher(page, base, token));

  const upCell = await runCell("%cluster up nb --in-allocation --notebook-cores 1 --notebook-mem 1G --wait --timeout 180");
  const card = await waitForOutput(upCell, (t) => /3\s*\/\s*3 workers/.test(t) || /Error/.test(t), 240_000);
  report("in-allocation card", /in job \d+, 2 nodes/.test(card) && /3\s*\/\s*3 workers/.test(card), card.slice(0, 600));
  await upCell.locator(".jp-OutputArea-output").first().screenshot({ path: path.join(outDir, "in-job-card.png") });

  // The card's dashboard link goes through JupyterLab (jupyter-server-proxy), no ssh: a person
  // clicks it and Dask's status page opens in a new tab.
  const link = upCell.locator('.jp-OutputArea-output a.rck-link[href*="/proxy/"]').first();
  const href = await link.getAttribute("href").catch(() => null);
  report("dashboard link through JupyterLab", !!href, href);
  if (href) {
    const [tab] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
    await tab.waitForLoadState("load");
    // Dask's status page: bokeh draws its plots into the page's root.
    await tab.locator(".bk-Root, .bk-root, [data-root-id]").first().waitFor({ timeout: 60_000 })
      .then(() => report("Dask's status page through JupyterLab", true, tab.url()),
            (e) => report("Dask's status page through JupyterLab", false, `${tab.url()}: ${e}`));
    await tab.waitForTimeout(2000);
    await tab.screenshot({ path: path.join(outDir, "dashboard-in-job.png") });
    await tab.close();
  }

  // The card's button opens Dask's own JupyterLab panes (dask-labextension) on that link.
  const panes = upCell.locator(".jp-OutputArea-output button.rck-button").first();
  if (await panes.count()) {
    // dask-labextension checks the new URL in the background and lays out only the plots it
    // has found: the first click sets the URL, a second one (as a person clicks again) opens.
    await panes.click();
    await page.waitForTimeout(3000);
    await panes.click();
    const paneTabs = page.locator(".lm-TabBar-tabLabel", { hasText: /Task Stream|Progress|Workers Memory/ });
    await paneTabs.first().waitFor({ timeout: 30_000 })
      .then(async () => report("Dask's panes open in JupyterLab", true, (await paneTabs.allInnerTexts()).join(", ")),
            (e) => report("Dask's panes open in JupyterLab", false, e));
    await page.waitForTimeout(3000);
    await page.screenshot({ path: path.join(outDir, "dask-panes-in-job.png") });
  } else {
    report("Dask's panes open in JupyterLab", false, "no button on the card");
  }

  const queueCell = await runCell("%%bash\nsqueue -h -o '%i %j'");
  report("queue after the in-allocation cluster", true, await waitForOutput(queueCell, (t) => /\d/.test(t)));

  const batchCell = await runCell("%cluster up batchjob --wait --timeout 180");
  const batchCard = await waitForOutput(batchCell, (t) => /3\s*\/\s*3 workers/.test(t) || /Error/.test(t), 240_000);
  report("batch cluster from inside the job", /3\s*\/\s*3 workers/.test(batchCard), batchCard.slice(0, 600));
  const jobCell = await runCell("%%bash\nscontrol show job $(squeue -h -n batchjob -o %i)");
  report("batch cluster's job", true, await waitForOutput(jobCell, (t) => t.includes("NumNodes")));

  const cancelCell = await runCell("%cluster cancel --all");
  const cancelled = await waitForOutput(cancelCell, (t) => (t.match(/finished/gi) || []).length >= 2 || /Error/.test(t), 180_000);
  report("both clusters cancelled", !/Error/.test(cancelled), cancelled.slice(0, 400));

  // The kernel shut down as a person does it: Kernel → Shut Down Kernel.
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Kernel$/ }).click();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^Shut Down Kernel$/ }).click();
  await page.getByText("Rust (cluster) | No Kernel").or(page.getByText("No Kernel")).first().waitFor({ timeout: 60_000 });
  report("kernel shut down", true);
} catch (e) {
  report("browser session", false, e.stack || e);
  await page.screenshot({ path: path.join(outDir, "in-job-failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
