#!/usr/bin/env python3
"""A tiny Qwen2-family forward in numpy that dumps a pv trace (model/trace/FORMAT.md).

It stands for "an engine outside pv": it shares no code with pv, reads the HF checkpoint
(config.json + model.safetensors) with json, struct and numpy only, computes every stage
in float64 and writes them as a pv-trace-v1 safetensors file, so `pv diff` / `pv bisect`
can compare it with pv's own trace of the same model and tokens.

    python3 engine.py --model ../../model/fixtures/qwen2-gqa4/hf --tokens 1,2,3 --out t.safetensors

NUMPY_ENGINE_BUG=rope_pairing plants one bug (off by default): RoPE rotates adjacent pairs
(2i, 2i+1) instead of Qwen2's half-split pairs (i, i + D/2). The example's tests use it to
show that pv bisect names the stage where the bug enters.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

BUGS = ("rope_pairing",)

# safetensors dtype -> numpy little-endian dtype; BF16 is widened by hand below.
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}

PER_LAYER_STAGES = ("attn_norm", "qkv_matmul", "qkv_bias", "q_post_rope", "k_post_rope",
                    "attn_scores", "attn_softmax", "attention", "attn_out", "post_attn_residual",
                    "ffn_norm", "ffn_gate", "ffn_up", "ffn_silu", "ffn_swigl", "ffn_out",
                    "post_ffn_residual")


class EngineError(Exception):
    """Bad input, reported with the file and the place in it."""


def read_safetensors(path):
    """Returns ({name: array in its stored dtype}, metadata, {name: safetensors dtype})."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise EngineError(f"{path}: {len(raw)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", raw, 0)
    if 8 + n > len(raw):
        raise EngineError(f"{path}: header length {n} at byte 0 runs past the end ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise EngineError(f"{path}: header JSON at byte 8: {e}") from e
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n:]
    out, dtypes = {}, {}
    for name, t in header.items():
        dtype, shape, (b0, b1) = t["dtype"], t["shape"], t["data_offsets"]
        if not 0 <= b0 <= b1 <= len(data):
            raise EngineError(f"{path}: tensor {name!r}: data_offsets [{b0}, {b1}] outside the "
                              f"{len(data)} data bytes (file byte {8 + n + b0})")
        chunk = data[b0:b1]
        if dtype == "BF16":
            a = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            a = np.frombuffer(chunk, _DTYPES[dtype])
        else:
            raise EngineError(f"{path}: tensor {name!r}: dtype {dtype} is not supported")
        if a.size != int(np.prod(shape, dtype=np.int64)):
            raise EngineError(f"{path}: tensor {name!r}: {a.size} elements for shape {shape}")
        out[name] = a.reshape(shape)
        dtypes[name] = dtype
    return out, meta, dtypes


def write_trace(path, tokens, n_layers, stages, **meta):
    """model/trace/FORMAT.md's numpy writer, verbatim."""
    header, blobs, off = {}, [], 0
    for key, a in stages.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(np.shape(a)), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    md = {"schema": "pv-trace-v1", "n_layers": str(n_layers), "tokens": json.dumps([int(t) for t in tokens])}
    md.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    header["__metadata__"] = md
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Qwen2:
    def __init__(self, model_dir):
        cfg_path = os.path.join(model_dir, "config.json")
        with open(cfg_path) as f:
            c = json.load(f)
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
            if key not in c:
                raise EngineError(f"{cfg_path}: missing key {key!r}")
        self.hidden = c["hidden_size"]
        self.n_layers = c["num_hidden_layers"]
        self.n_heads = c["num_attention_heads"]
        self.n_kv = c.get("num_key_value_heads", self.n_heads)
        self.head_dim = c.get("head_dim") or self.hidden // self.n_heads
        self.vocab = c["vocab_size"]
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        if c.get("rope_scaling"):
            raise EngineError(f"{cfg_path}: rope_scaling {c['rope_scaling']} is not supported")
        w, _, self.stored_dtype = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        # Compute in float64 whatever the stored dtype.
        self.w = {k: v.astype(np.float64) for k, v in w.items()}
        if "lm_head.weight" not in self.w or c.get("tie_word_embeddings"):
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        # The dominant stored type of the 2-D weights, in safetensors' spelling (bisect's prior).
        kinds = [self.stored_dtype[k] for k, v in w.items() if v.ndim == 2]
        self.weight_type = max(set(kinds), key=kinds.count)
        # HF (and pv) compute the inverse frequencies in float32; doing the same keeps the
        # comparison about the engine, not about a 1e-7 difference in the angles.
        expo = (np.arange(0, self.head_dim, 2, dtype=np.float32) / np.float32(self.head_dim))
        self.inv_freq = (np.float32(1.0) / np.power(np.float32(self.theta), expo)).astype(np.float64)

    def rms_norm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x, n_heads, bug):
        """x: [T, n_heads*D]; rotates each head's pairs by position * inv_freq."""
        T, D = x.shape[0], self.head_dim
        ang = np.arange(T, dtype=np.float64)[:, None] * self.inv_freq[None, :]  # [T, D/2]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        h = x.reshape(T, n_heads, D)
        if bug == "rope_pairing":  # the planted bug: llama.cpp-GGUF pairing on HF rows
            a, b = h[..., 0::2], h[..., 1::2]
            out = np.empty_like(h)
            out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        else:  # Qwen2 / HF: pairs (i, i + D/2)
            a, b = h[..., :D // 2], h[..., D // 2:]
            out = np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
        return out.reshape(T, n_heads * D)

    def forward(self, tokens, bug=None):
        """Returns {trace key: float64 array} for every stage, in computation order."""
        if bug not in (None, "") + BUGS:
            raise EngineError(f"NUMPY_ENGINE_BUG={bug!r}: not one of {', '.join(BUGS)}")
        for i, t in enumerate(tokens):
            if not 0 <= t < self.vocab:
                raise EngineError(f"tokens[{i}] = {t} is outside the vocabulary (0 .. {self.vocab - 1})")
        w, T, H, KV, D = self.w, len(tokens), self.n_heads, self.n_kv, self.head_dim
        Q, K = H * D, KV * D
        s = {}
        x = w["model.embed_tokens.weight"][np.asarray(tokens)]
        s["embedding"] = x
        causal = np.tril(np.ones((T, T), dtype=bool))
        for l in range(self.n_layers):
            p = f"model.layers.{l}."
            st = {}
            st["attn_norm"] = h = self.rms_norm(x, w[p + "input_layernorm.weight"])
            qkv = np.concatenate([h @ w[p + f"self_attn.{n}_proj.weight"].T for n in "qkv"], axis=1)
            st["qkv_matmul"] = qkv
            bias = [w.get(p + f"self_attn.{n}_proj.bias") for n in "qkv"]
            if all(b is not None for b in bias):
                qkv = qkv + np.concatenate(bias)
            st["qkv_bias"] = qkv
            q, k, v = qkv[:, :Q], qkv[:, Q:Q + K], qkv[:, Q + K:]
            st["q_post_rope"] = q = self.rope(q, H, bug)
            st["k_post_rope"] = k = self.rope(k, KV, bug)
            qh = q.reshape(T, H, D).transpose(1, 0, 2)                            # [H, T, D]
            kh = k.reshape(T, KV, D).transpose(1, 0, 2)[np.arange(H) // (H // KV)]  # GQA
            vh = v.reshape(T, KV, D).transpose(1, 0, 2)[np.arange(H) // (H // KV)]
            scores = qh @ kh.transpose(0, 2, 1) / np.sqrt(D)                      # [H, T, T]
            st["attn_scores"] = scores
            masked = np.where(causal, scores, -np.inf)
            e = np.exp(masked - masked.max(-1, keepdims=True))  # exp(-inf) = 0 on future keys
            st["attn_softmax"] = prob = e / e.sum(-1, keepdims=True)
            st["attention"] = att = (prob @ vh).transpose(1, 0, 2).reshape(T, Q)
            st["attn_out"] = ao = att @ w[p + "self_attn.o_proj.weight"].T
            st["post_attn_residual"] = x = x + ao
            st["ffn_norm"] = h = self.rms_norm(x, w[p + "post_attention_layernorm.weight"])
            st["ffn_gate"] = g = h @ w[p + "mlp.gate_proj.weight"].T
            st["ffn_up"] = u = h @ w[p + "mlp.up_proj.weight"].T
            st["ffn_silu"] = sg = g / (1.0 + np.exp(-g))
            st["ffn_swigl"] = sw = sg * u
            st["ffn_out"] = fo = sw @ w[p + "mlp.down_proj.weight"].T
            st["post_ffn_residual"] = x = x + fo
            for name in PER_LAYER_STAGES:
                s[f"L{l}.{name}"] = st[name]
        s["final_norm"] = h = self.rms_norm(x, w["model.norm.weight"])
        s["lm_head"] = h @ w["lm_head.weight"].T
        return s

    def greedy(self, tokens, n, bug=None):
        """n greedy tokens after tokens (a full forward per step: the model is tiny)."""
        seq = list(tokens)
        for _ in range(n):
            seq.append(int(np.argmax(self.forward(seq, bug)["lm_head"][-1])))
        return seq[len(tokens):]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model directory (config.json, model.safetensors)")
    ap.add_argument("--tokens", required=True, help="prompt token ids, e.g. 1,2,3")
    ap.add_argument("--out", required=True, help="trace file to write (.safetensors)")
    ap.add_argument("--max-new", type=int, default=0, help="greedy tokens to record as greedy_tokens")
    args = ap.parse_args(argv)
    bug = os.environ.get("NUMPY_ENGINE_BUG") or None
    try:
        try:
            tokens = [int(t) for t in args.tokens.split(",")]
        except ValueError as e:
            raise EngineError(f"--tokens {args.tokens!r}: {e}") from e
        m = Qwen2(args.model)
        stages = m.forward(tokens, bug)
        meta = {"producer": "examples/numpy-engine/engine.py" + (f" (NUMPY_ENGINE_BUG={bug})" if bug else ""),
                "model": args.model, "architecture": "qwen2", "backend": "numpy", "dtype": "f64",
                "weight_type": m.weight_type, "qk_rows": "hf",
                "n_heads": m.n_heads, "n_kv_heads": m.n_kv, "head_dim": m.head_dim}
        if args.max_new > 0:
            meta["greedy_tokens"] = m.greedy(tokens, args.max_new, bug)
        write_trace(args.out, tokens, m.n_layers, stages, **meta)
    except (EngineError, OSError, KeyError) as e:
        print(f"engine.py: {e}", file=sys.stderr)
        return 2
    print(f"engine.py: wrote {len(stages)} stages of {len(tokens)} tokens to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
