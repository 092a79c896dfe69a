# Algorithm-level checks of the engine that need no pv: its RoPE against a complex
# rotation, and its trace writer against its own reader.
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine import Qwen2, read_safetensors, write_trace  # noqa: E402


def seeded_rng(record_property):
    # pv validate passes PV_SEED; a plain pytest run draws one. Either way it is printed
    # and recorded, so a failure can be replayed with PV_SEED=<seed>.
    seed = int(os.environ.get("PV_SEED") or np.random.SeedSequence().entropy % 2**32)
    print(f"seed={seed}")
    record_property("seed", seed)
    return np.random.default_rng(seed)


class _Rope(Qwen2):
    def __init__(self, head_dim, theta):  # only what rope() reads; no weights
        self.head_dim = head_dim
        expo = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
        self.inv_freq = (np.float32(1.0) / np.power(np.float32(theta), expo)).astype(np.float64)


def test_rope_is_half_split_rotation(record_property):
    rng = seeded_rng(record_property)
    T, H, D = 6, 3, 16
    m = _Rope(D, 1e6)
    x = rng.standard_normal((T, H * D))
    got = m.rope(x, H, None).reshape(T, H, D)
    # Qwen2 rotates the pair (i, i + D/2) of every head as the complex number
    # x_i + j·x_{i+D/2} by the angle pos·inv_freq_i.
    h = x.reshape(T, H, D)
    z = (h[..., :D // 2] + 1j * h[..., D // 2:]) * np.exp(1j * np.arange(T)[:, None, None] * m.inv_freq)
    want = np.concatenate([z.real, z.imag], axis=-1)
    assert np.abs(got - want).max() < 1e-12
    # The planted bug pairs (2i, 2i+1) instead: a different rotation of the same vector.
    bad = m.rope(x, H, "rope_pairing").reshape(T, H, D)
    assert np.allclose(np.linalg.norm(bad, axis=-1), np.linalg.norm(h, axis=-1))
    assert np.abs(bad[1:] - want[1:]).max() > 1e-3
    assert np.abs(bad[0] - h[0]).max() == 0  # position 0 rotates by nothing either way


def test_trace_roundtrip(tmp_path, record_property):
    rng = seeded_rng(record_property)
    stages = {"embedding": rng.standard_normal((3, 8)), "L0.attn_norm": rng.standard_normal((3, 8)),
              "L0.attn_scores": rng.standard_normal((2, 3, 3)), "lm_head": rng.standard_normal((3, 5))}
    path = tmp_path / "t.safetensors"
    write_trace(path, [5, 6, 7], 1, stages, qk_rows="hf", n_heads=2, greedy_tokens=[1, 2])
    raw = path.read_bytes()
    (n,) = np.frombuffer(raw[:8], "<u8")
    assert n % 8 == 0
    back, meta, dtypes = read_safetensors(path)
    assert list(back) == list(stages)  # computation order kept
    for k, a in stages.items():
        assert dtypes[k] == "F32" and back[k].shape == a.shape
        assert np.array_equal(back[k], a.astype(np.float32))
    assert meta["schema"] == "pv-trace-v1" and meta["n_layers"] == "1"
    assert json.loads(meta["tokens"]) == [5, 6, 7] and json.loads(meta["greedy_tokens"]) == [1, 2]
    assert meta["qk_rows"] == "hf" and meta["n_heads"] == "2"
