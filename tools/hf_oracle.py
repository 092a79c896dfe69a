#!/usr/bin/env python3
"""Independent oracle for pv traces: run an HF model directory through transformers'
own Qwen2ForCausalLM / Qwen3ForCausalLM / LlamaForCausalLM (eager attention), capture
every stage of DESIGN.md's list, and write the pv trace layout (trace.json + APRT files)
plus the greedy continuation, in float32 and/or float64.

Where each stage comes from (per decoder layer unless noted):
  HOOKED (taken from transformers' own modules / outputs):
    embedding          model.embed_tokens output                     (whole model)
    attn_norm          input_layernorm output
    qkv_bias           q_proj | k_proj | v_proj outputs (Linear with its bias), concatenated
    q_norm, k_norm     self_attn.q_norm / k_norm outputs (Qwen3 only; transformers applies them
                       to the [.., heads, head_dim] view; written as [T, heads*head_dim])
    attn_softmax       outputs.attentions[layer] (eager attention weights, post mask+softmax)
    attention          input of o_proj (forward pre-hook)
    attn_out           o_proj output
    post_attn_residual input of post_attention_layernorm (forward pre-hook)
    ffn_norm           post_attention_layernorm output
    ffn_gate           mlp.gate_proj output
    ffn_up             mlp.up_proj output
    ffn_silu           mlp.act_fn output
    ffn_swigl          input of mlp.down_proj (forward pre-hook)
    ffn_out            mlp.down_proj output
    post_ffn_residual  decoder layer output
    final_norm         model.norm output                              (whole model)
    lm_head            lm_head output                                 (whole model)
  RECOMPUTED (transformers exposes no tensor for them):
    qkv_matmul   F.linear(hooked q/k/v_proj input, the module's weight) -- no bias
    q_post_rope, k_post_rope
                 the hooked q_proj / k_proj outputs (Qwen3: q_norm / k_norm outputs),
                 reshaped to heads, rotated by the model's own rotary_emb module (so its
                 RoPE scaling, e.g. llama3, is transformers') and its modeling file's
                 apply_rotary_pos_emb
    attn_scores  q_post_rope . repeat_kv(k_post_rope)^T * head_dim^-0.5 (before the mask),
                 with the modeling file's repeat_kv; checked against the hooked
                 attn_softmax: softmax(scores + causal mask) must reproduce it (the
                 max |diff| is printed and stored in trace.json as "self_check").
All tensors are written as float32 APRT (the dtype field records the compute dtype).
trace.json also records the rotary embedding's rope_type, inv_freq and attention_scaling
("rotary"), so a RoPE table can be compared with transformers' own.
"""
import argparse
import importlib
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

STAGES = [
    "embedding", "attn_norm", "qkv_matmul", "qkv_bias", "q_norm", "k_norm", "q_post_rope",
    "k_post_rope", "attn_scores", "attn_softmax", "attention", "attn_out", "post_attn_residual",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_silu", "ffn_swigl", "ffn_out",
    "post_ffn_residual", "final_norm", "lm_head",
]
WHOLE_MODEL = {"embedding", "final_norm", "lm_head"}
HOOKED = ["embedding", "attn_norm", "qkv_bias", "q_norm", "k_norm", "attn_softmax",
          "attention", "attn_out", "post_attn_residual", "ffn_norm", "ffn_gate", "ffn_up",
          "ffn_silu", "ffn_swigl", "ffn_out", "post_ffn_residual", "final_norm", "lm_head"]
RECOMPUTED = ["qkv_matmul", "q_post_rope", "k_post_rope", "attn_scores"]
RECOMPUTED_EXTRA = set()  # stages this transformers version forced us to recompute
QK_NORM_FAMILIES = ("qwen3",)  # families with per-head q_norm / k_norm


def write_aprt(path, layer, t):
    data = t.detach().to(torch.float32).contiguous().cpu().reshape(-1)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"APRT")
        f.write(struct.pack("<II", 0xFFFFFFFF if layer is None else layer, data.numel()))
        f.write(data.numpy().astype("<f4").tobytes())


def cfg_dtype(cfg):
    d = getattr(cfg, "torch_dtype", None) or getattr(cfg, "dtype", None) or "float32"
    return str(d).replace("torch.", "")


def first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def run(model_dir, tokens, dtype, out_dir, max_new, device):
    from transformers import AutoConfig, AutoModelForCausalLM
    import transformers

    cfg = AutoConfig.from_pretrained(model_dir)
    arch = cfg.model_type
    if arch not in ("qwen2", "qwen3", "llama"):
        raise SystemExit(f"{model_dir}: model_type {arch!r} is not qwen2, qwen3 or llama")
    qk_norm = arch in QK_NORM_FAMILIES
    modeling = importlib.import_module(f"transformers.models.{arch}.modeling_{arch}")
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager")
    model = model.to(dtype=dtype, device=device).eval()
    assert type(model).__name__ in ("Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                    "LlamaForCausalLM"), type(model)
    inner = model.model
    n_layers = cfg.num_hidden_layers
    n_heads = cfg.num_attention_heads
    n_kv = cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads

    cap = {}  # (stage, layer) -> tensor [T, ...] (batch dim dropped)

    def keep(stage, layer):
        def out_hook(_m, _inp, out):
            cap[(stage, layer)] = first(out)[0].detach().clone()
        return out_hook

    def keep_in(stage, layer):
        def pre_hook(_m, inp):
            cap[(stage, layer)] = inp[0][0].detach().clone()
        return pre_hook

    handles = [inner.embed_tokens.register_forward_hook(keep("embedding", None)),
               inner.norm.register_forward_hook(keep("final_norm", None)),
               model.lm_head.register_forward_hook(keep("lm_head", None))]
    for l, layer in enumerate(inner.layers):
        a, m = layer.self_attn, layer.mlp
        hooks = [
            (layer.input_layernorm, keep("attn_norm", l)),
            (a.q_proj, keep("q_proj", l)), (a.k_proj, keep("k_proj", l)),
            (a.v_proj, keep("v_proj", l)),
            (a.o_proj, keep("attn_out", l)),
            (layer.post_attention_layernorm, keep("ffn_norm", l)),
            (m.gate_proj, keep("ffn_gate", l)), (m.up_proj, keep("ffn_up", l)),
            (m.down_proj, keep("ffn_out", l)),
            (layer, keep("post_ffn_residual", l)),
        ]
        if qk_norm:
            hooks += [(a.q_norm, keep("q_norm", l)), (a.k_norm, keep("k_norm", l))]
        if isinstance(m.act_fn, torch.nn.Module):
            hooks.append((m.act_fn, keep("ffn_silu", l)))
        else:  # a plain function in some versions: recomputed below from ffn_gate
            RECOMPUTED_EXTRA.add("ffn_silu")
        handles += [mod.register_forward_hook(h) for mod, h in hooks]
        pre = [(a.q_proj, keep_in("qkv_in", l)), (a.o_proj, keep_in("attention", l)),
               (layer.post_attention_layernorm, keep_in("post_attn_residual", l)),
               (m.down_proj, keep_in("ffn_swigl", l))]
        handles += [mod.register_forward_pre_hook(h) for mod, h in pre]

    ids = torch.tensor([tokens], dtype=torch.long, device=device)
    T = len(tokens)
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True, use_cache=False)
    for h in handles:
        h.remove()
    hf_probs = out.attentions is not None and len(out.attentions) == n_layers
    if not hf_probs:  # then attn_softmax is recomputed (and said so in trace.json)
        RECOMPUTED_EXTRA.add("attn_softmax")

    position_ids = torch.arange(T, device=device).unsqueeze(0)
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    self_check = 0.0

    def emit(stage, layer, t):
        rel = f"{stage}.bin" if layer is None else f"layer-{layer}/{stage}.bin"
        write_aprt(os.path.join(out_dir, rel), layer, t)
        entries.append({"stage": stage, "layer": layer, "file": rel, "shape": list(t.shape)})

    emit("embedding", None, cap[("embedding", None)])
    causal = torch.full((T, T), float("-inf"), dtype=dtype, device=device).triu(1)
    with torch.no_grad():
        for l in range(n_layers):
            a = inner.layers[l].self_attn
            x = cap[("qkv_in", l)]
            qkv_mm = torch.cat([F.linear(x, a.q_proj.weight), F.linear(x, a.k_proj.weight),
                                F.linear(x, a.v_proj.weight)], dim=-1)
            q, k, v = cap[("q_proj", l)], cap[("k_proj", l)], cap[("v_proj", l)]
            if qk_norm:  # [T, heads, head_dim] -> [T, heads * head_dim]
                qn = cap[("q_norm", l)].reshape(T, n_heads * head_dim)
                kn = cap[("k_norm", l)].reshape(T, n_kv * head_dim)
            else:
                qn, kn = q, k
            qh = qn.reshape(1, T, n_heads, head_dim).transpose(1, 2)
            kh = kn.reshape(1, T, n_kv, head_dim).transpose(1, 2)
            cos, sin = inner.rotary_emb(qh, position_ids)
            qr, kr = modeling.apply_rotary_pos_emb(qh, kh, cos, sin)
            scores = torch.matmul(qr, modeling.repeat_kv(kr, n_heads // n_kv).transpose(2, 3))
            scores = scores * head_dim ** -0.5
            mine = torch.softmax((scores[0] + causal).to(torch.float32), dim=-1).to(dtype)
            probs = out.attentions[l][0] if hf_probs else mine
            self_check = max(self_check, (mine - probs).abs().max().item())
            if ("ffn_silu", l) not in cap:
                cap[("ffn_silu", l)] = F.silu(cap[("ffn_gate", l)])
            emit("attn_norm", l, cap[("attn_norm", l)])
            emit("qkv_matmul", l, qkv_mm)
            emit("qkv_bias", l, torch.cat([q, k, v], dim=-1))
            if qk_norm:
                emit("q_norm", l, qn)
                emit("k_norm", l, kn)
            emit("q_post_rope", l, qr[0].transpose(0, 1).reshape(T, n_heads * head_dim))
            emit("k_post_rope", l, kr[0].transpose(0, 1).reshape(T, n_kv * head_dim))
            emit("attn_scores", l, scores[0])
            emit("attn_softmax", l, probs)
            for s in STAGES[STAGES.index("attention"):STAGES.index("final_norm")]:
                emit(s, l, cap[(s, l)])
    emit("final_norm", None, cap[("final_norm", None)])
    emit("lm_head", None, cap[("lm_head", None)])

    # Greedy continuation by full recomputation (no KV cache, nothing to get wrong).
    seq = list(tokens)
    greedy = []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(input_ids=torch.tensor([seq], device=device), use_cache=False).logits
            nxt = int(torch.argmax(logits[0, -1]).item())
            greedy.append(nxt)
            seq.append(nxt)

    re = inner.rotary_emb
    rotary = {"rope_type": getattr(re, "rope_type", None),
              "inv_freq": [float(x) for x in re.inv_freq.detach().to(torch.float64).cpu()],
              "attention_scaling": float(getattr(re, "attention_scaling", 1.0))}
    dname = {torch.float32: "f32", torch.float64: "f64"}[dtype]
    meta = {
        "schema": "pv-trace-v1",
        "producer": f"tools/hf_oracle.py (transformers {transformers.__version__}, "
                    f"torch {torch.__version__}, {type(model).__name__}, eager attention, "
                    f"device {device})",
        # fixtures keep their HF files in <name>/hf: name the fixture, not "hf"
        "model": (os.path.basename(os.path.dirname(os.path.normpath(model_dir)))
                  if os.path.basename(os.path.normpath(model_dir)) == "hf"
                  else os.path.basename(os.path.normpath(model_dir))),
        "weight_type": "F32" if cfg_dtype(cfg) == "float32" else cfg_dtype(cfg).upper(),
        "architecture": arch,
        "backend": "hf-transformers",
        "dtype": dname,
        "n_layers": n_layers,
        "tokens": list(tokens),
        "greedy_tokens": greedy,
        "rotary": rotary,
        "stage_sources": {"hooked": [h for h in HOOKED if h not in RECOMPUTED_EXTRA and
                                     (qk_norm or h not in ("q_norm", "k_norm"))],
                          "recomputed": RECOMPUTED + sorted(RECOMPUTED_EXTRA)},
        "self_check": {"max_abs_softmax_recomputed_vs_hooked": self_check},
        "stages": entries,
    }
    with open(os.path.join(out_dir, "trace.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{model_dir} [{dname}] -> {out_dir}: {len(entries)} stages, greedy {greedy}, "
          f"softmax self-check max|diff| {self_check:.3e}")
    if self_check > 1e-6:
        raise SystemExit("recomputed attention scores do not reproduce HF's softmax")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="HF model directory (config.json + safetensors)")
    p.add_argument("--tokens", required=True, help="comma-separated token ids")
    p.add_argument("--dtype", choices=["f32", "f64", "both"], default="both")
    p.add_argument("--max-new", type=int, default=8, help="greedy tokens to generate")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", required=True,
                   help="output directory (with --dtype both: OUT/f32 and OUT/f64)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    dtypes = {"f32": [torch.float32], "f64": [torch.float64],
              "both": [torch.float32, torch.float64]}[args.dtype]
    for dt in dtypes:
        out = args.out if len(dtypes) == 1 else os.path.join(
            args.out, {torch.float32: "f32", torch.float64: "f64"}[dt])
        run(args.model, tokens, dt, out, args.max_new, args.device)


if __name__ == "__main__":
    sys.exit(main())
