#!/usr/bin/env bash
# Installs kite under a prefix: PREFIX/bin/kite, and PREFIX/share/kite/{all-mpnet-base-v2/,
# libonnxruntime.so} copied as real files (models/ holds links into .venv, which may vanish).
# The model directory holds the five files kite reads (model.onnx, the int8 all-mpnet-base-v2 that
# scripts/setup.sh builds, and its tokenizer files).
# Copies go to a temporary name first and are renamed into place, so a running kite never sees
# a half-written file and a second run replaces the files with identical ones.
set -euo pipefail
prefix=${1:?usage: install.sh PREFIX MODELS BINARY}
models=${2:?}
binary=${3:?}
share="$prefix/share/kite"
mkdir -p "$prefix/bin" "$share/all-mpnet-base-v2"
put() { # put SRC DEST MODE
  cp -L "$1" "$2.kite-tmp"
  chmod "$3" "$2.kite-tmp"
  mv -f "$2.kite-tmp" "$2"
}
put "$binary" "$prefix/bin/kite" 755
put "$models/libonnxruntime.so" "$share/libonnxruntime.so" 644
for f in model.onnx tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
  put "$models/all-mpnet-base-v2/$f" "$share/all-mpnet-base-v2/$f" 644
done
# An earlier kite's model, which this one no longer reads.
rm -rf "$share/all-minilm-l6-v2"
echo "installed $prefix/bin/kite; model and ONNX runtime in $share"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on your PATH; add it, e.g. export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
echo "next: in your project, run \`kite install\`"
