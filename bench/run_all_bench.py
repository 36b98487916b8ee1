"""Restart & Run All: this kernel against evcxr_jupyter on notebooks written for this benchmark
(the engine's primer never saw them), in ONE run, interleaved (ours, evcxr, ours, …) so that
both meet the same machine. Not a test: it prints figures and ratios (and writes bench/results/).

Two ways a user runs a notebook:
- at once: "Restart kernel and run all cells": the cells are sent as soon as the kernel answers
  kernel_info; measured from the kernel's start to the last cell's reply;
- after reading: the cells are sent after the kernel has been up for --read-pause seconds;
  measured from sending the cells to the last reply.
"""
import argparse
import json
import pathlib
import statistics
import time

from jupyter_client.kernelspec import KernelSpecManager

from kernel_bench import start

HERE = pathlib.Path(__file__).resolve().parent

NOTEBOOKS = {
    # A small inventory: structs, a Vec of them, a HashMap, closures, a BTreeMap, fold, max_by.
    "inventory": [
        "use std::collections::{BTreeMap, HashMap};",
        "#[derive(Debug, Clone)]\nstruct Item { name: String, kind: &'static str, price: f64, stock: u32 }",
        "let items = vec![\n"
        "    Item { name: \"bolt\".into(), kind: \"hardware\", price: 0.25, stock: 900 },\n"
        "    Item { name: \"drill\".into(), kind: \"tools\", price: 79.0, stock: 4 },\n"
        "    Item { name: \"saw\".into(), kind: \"tools\", price: 25.5, stock: 11 },\n"
        "    Item { name: \"nut\".into(), kind: \"hardware\", price: 0.1, stock: 1500 },\n"
        "];",
        "let value_of: fn(&Item) -> f64 = |i| i.price * i.stock as f64;",
        "let mut by_kind: HashMap<&'static str, Vec<Item>> = HashMap::new();\n"
        "for item in &items { by_kind.entry(item.kind).or_default().push(item.clone()); }\n"
        "by_kind.len()",
        "let totals: BTreeMap<&'static str, f64> = by_kind.iter().map(|(k, v)| (*k, v.iter().map(value_of).sum())).collect();\n"
        "totals",
        "let stock = items.iter().fold(0u32, |acc, i| acc + i.stock);",
        "let dearest: Item = items.iter().max_by(|a, b| a.price.total_cmp(&b.price)).cloned().unwrap();\n"
        "dearest.name.clone()",
        "for (kind, total) in &totals { println!(\"{kind:>10}: {total:8.2}\"); }",
        "format!(\"{} items, {} in stock\", items.len(), stock)",
    ],
    # Text statistics: strings, chars, sorting, dedup, Options, a trait with an impl, generics.
    "text": [
        "let text: &'static str = \"the quick brown fox jumps over the lazy dog the end\";",
        "let words: Vec<&'static str> = text.split(' ').collect();\nwords.len()",
        "let mut sorted: Vec<&'static str> = words.clone();\nsorted.sort_unstable();\nsorted.dedup();\nsorted.len()",
        "trait Score { fn score(&self) -> usize; }\nimpl Score for str { fn score(&self) -> usize { self.chars().filter(|c| \"aeiou\".contains(*c)).count() } }",
        "words.iter().copied().max_by_key(|w| w.score())",
        "fn longest<'a, T: AsRef<str> + ?Sized>(xs: &[&'a T]) -> Option<&'a T> { xs.iter().copied().max_by_key(|x| x.as_ref().len()) }",
        "longest(&words).map(|w| w.to_uppercase())",
        "let letters: std::collections::HashSet<char> = text.chars().filter(|c| c.is_alphabetic()).collect();\nletters.len()",
        "let pairs: Vec<String> = words.iter().zip(words.iter().skip(1)).take(3).map(|(a, b)| format!(\"{a}-{b}\")).collect();\npairs",
        "for (i, w) in words.iter().enumerate().filter(|(_, w)| w.len() > 4) { println!(\"{i}: {w}\"); }",
    ],
}


def run_all(kc, cells):
    """Sends every cell at once and waits for every reply; returns the seconds from sending to
    each cell's reply."""
    t = time.perf_counter()
    ids = [kc.execute(code) for code in cells]
    done = {}
    while len(done) < len(ids):
        reply = kc.get_shell_msg(timeout=300)
        parent = reply["parent_header"].get("msg_id")
        if parent in ids:
            assert reply["content"]["status"] == "ok", (cells[ids.index(parent)], reply["content"])
            done[parent] = time.perf_counter() - t
    return [done[i] for i in ids]


def one_run(name, cells, read_pause):
    km, kc, ready = start(name)
    try:
        if read_pause:
            time.sleep(read_pause)
            return run_all(kc, cells)[-1]
        # Sent as soon as the kernel answered: the time to that answer counts too.
        return ready + run_all(kc, cells)[-1]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per kernel, notebook and way")
    parser.add_argument("--read-pause", type=float, default=5.0)
    parser.add_argument("--evcxr-kernel", default="rust", help="kernelspec name of evcxr_jupyter")
    args = parser.parse_args()
    specs = KernelSpecManager().find_kernel_specs()
    for needed in ("rust-cluster", args.evcxr_kernel):
        if needed not in specs:
            raise SystemExit(f"kernelspec {needed!r} is not installed (see bench/run.sh)")
    kernels = {"ours": "rust-cluster", "evcxr": args.evcxr_kernel}
    results = {}
    for notebook, cells in NOTEBOOKS.items():
        for way, pause in (("at once", 0.0), ("after reading", args.read_pause)):
            times = {k: [] for k in kernels}
            for _ in range(args.runs):
                for label, name in kernels.items():
                    times[label].append(one_run(name, cells, pause))
                    print(f"[bench] {notebook:9} {way:13} {label:5} {times[label][-1]:6.2f} s", flush=True)
            results[f"{notebook} / {way}"] = times
    targets = {"at once": 0.9, "after reading": 0.8}
    lines = [f"{'notebook / way':28} {'ours (s)':>22} {'evcxr (s)':>22}   ratios per run      median  target"]
    for key, times in results.items():
        ratios = [o / e for o, e in zip(times["ours"], times["evcxr"])]
        limit = targets[key.split(" / ")[1]]
        verdict = "PASS" if max(ratios) <= limit else "MISS"
        fmt = lambda xs: " ".join(f"{x:6.2f}" for x in xs)
        lines.append(f"{key:28} {fmt(times['ours']):>22} {fmt(times['evcxr']):>22}   {fmt(ratios):18} "
                     f"{statistics.median(ratios):5.2f}x  ≤{limit}x every run {verdict}")
    text = "\n".join(lines)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"run-all-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    (out / "run-all-latest.md").write_text(
        f"# Restart & Run All benchmark, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"Interleaved runs on notebooks the primer never saw (bench/run_all_bench.py).\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main()
