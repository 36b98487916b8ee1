#!/usr/bin/env bash
# bench/run.sh — the kernel benchmark against evcxr_jupyter and ipykernel, in one run.
#
# Needs the project venv (./test.sh or tests/setup/python.sh makes it) with our kernel installed
# (./install.sh --prefix .venv), and evcxr_jupyter: `cargo install evcxr_jupyter --locked` then
# `evcxr_jupyter --install` (its kernelspec is named "rust"). A missing peer is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/kernel_bench.py "$@"
