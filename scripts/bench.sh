#!/usr/bin/env bash
# `make bench`: runs every benchmark binary (release) and writes docs/BENCHMARKS.md. Each binary
# prints a Markdown section on stdout and its progress on stderr.
set -euo pipefail
out=${1:-docs/BENCHMARKS.md}
shift || true
bin=target/release
tmp=$(mktemp)
{
  echo "# Benchmarks"
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(uname -m)), release build,"
  echo "with \`make bench\` (that is \`bash scripts/bench.sh\`, which runs \`target/release/kite-bench\`,"
  echo "\`target/release/kite-memory-bench\`, \`target/release/kite-inject-bench\`, \`target/release/kite-sched-bench\`, \`target/release/kite-land-bench\`, \`target/release/kite-quality-bench\` (with a clone), \`bench/agent_bench.py\`, \`bench/hook_bench.py\` and \`bench/ui_bench.py\`). Every ratio is"
  echo "against a baseline measured in the same run."
  echo
  "$bin/kite-bench" "$@"
  echo
  # The coordinator against another build (KITE_BENCH_VERSUS=OTHER/target/release/kite), when given.
  if [ -n "${KITE_BENCH_VERSUS:-}" ]; then
    "$bin/kite-bench" --versus-only "$KITE_BENCH_VERSUS"
    echo
  fi
  "$bin/kite-memory-bench" "$@"
  echo
  "$bin/kite-inject-bench"
  echo
  "$bin/kite-sched-bench" "$@"
  echo
  "$bin/kite-land-bench"
  echo
  # The survival job on a real repository's history, when a clone is given (KITE_BENCH_CLONE=PATH).
  if [ -n "${KITE_BENCH_CLONE:-}" ]; then
    "$bin/kite-quality-bench" --repo "$KITE_BENCH_CLONE" --commits 300
    echo
  fi
  .venv/bin/python bench/agent_bench.py "$bin/kite" 5
  echo
  .venv/bin/python bench/hook_bench.py "$bin/kite" 10
  echo
  if [ -x /usr/bin/chromium ] && .venv/bin/python -c 'import playwright' 2>/dev/null; then
    .venv/bin/python bench/ui_bench.py "$bin/kite"
  else
    echo "## Dashboard (kite ui)"
    echo
    echo "Not measured: needs Debian's chromium (\`apt-get install chromium\`) and \`make setup\` (Playwright)."
  fi
} > "$tmp"
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
echo "wrote $out"
