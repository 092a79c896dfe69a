# The numpy engine checked against pv, through pv's own CLI only (pv trace / diff / bisect):
# what an outside engine's CI would run. Bound by contracts/numpy-engine-v1.yaml.
#
# pv is $PV_BIN, else <repo>/build-cpu/bin/pv or <repo>/build/bin/pv, else `pv` on $PATH;
# without one the tests skip as fixture-absent: pv-binary.
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(EXAMPLE))
sys.path.insert(0, EXAMPLE)
from engine import read_safetensors  # noqa: E402

MODEL = os.environ.get("NUMPY_ENGINE_MODEL", os.path.join(REPO, "model", "fixtures", "qwen2-gqa4", "hf"))
# Eight prompt ids spread over the 512-token vocabulary; position 7 exercises RoPE angles
# well away from 0, where a wrong pairing is still small.
TOKENS = [1, 17, 42, 99, 256, 7, 300, 511]
N_LAYERS = 2
MAX_NEW = 8
ALL_STAGES = 1 + 17 * N_LAYERS + 2
PLANTED = "rope_pairing"


def find_pv():
    explicit = os.environ.get("PV_BIN")
    if explicit:
        # A pv that was named but is not there is a broken setup, not an absent fixture.
        assert os.access(explicit, os.X_OK), f"PV_BIN={explicit} is not an executable file"
        return explicit
    for cand in (os.path.join(REPO, "build-cpu", "bin", "pv"), os.path.join(REPO, "build", "bin", "pv")):
        if os.access(cand, os.X_OK):
            return cand
    found = shutil.which("pv")
    if found:
        return found
    pytest.skip("fixture-absent: pv-binary")


def run(argv, env=None, ok=(0,)):
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode in ok, f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def engine_trace(path, bug=None):
    """Runs the engine as its own process. bug=None keeps the caller's NUMPY_ENGINE_BUG, so
    setting it around pv validate plants the bug into every 'clean' run too."""
    env = dict(os.environ)
    if bug is not None:
        env["NUMPY_ENGINE_BUG"] = bug
    run([sys.executable, os.path.join(EXAMPLE, "engine.py"), "--model", MODEL,
         "--tokens", ",".join(map(str, TOKENS)), "--max-new", str(MAX_NEW), "--out", str(path)], env=env)
    return str(path)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    pv = find_pv()
    d = tmp_path_factory.mktemp("traces")
    ref = str(d / "pv.safetensors")
    run([pv, "trace", "--model", MODEL, "--tokens", ",".join(map(str, TOKENS)), "--stages", "all",
         "--layers", "all", "--max-new", str(MAX_NEW), "--out", ref])
    return {"pv": pv, "ref": ref, "engine": engine_trace(d / "engine.safetensors"), "dir": d}


def test_trace_matches_pv(traces, record_property):
    r = run([traces["pv"], "diff", "--json", traces["ref"], traces["engine"]])
    diff = json.loads(r.stdout)
    assert diff.get("tokens_equal", True), f"pv diff says the traces ran different tokens: {diff}"
    stages = diff["stages"]
    # Every stage pv traces is compared: a stage the engine left out would fail pv diff
    # (no --common), and a stage pv stopped writing would show up here.
    assert len(stages) == ALL_STAGES, [(s["layer"], s["stage"]) for s in stages]
    nmse = [(float(s["nmse"]), s["layer"], s["stage"]) for s in stages]
    worst = max(nmse)
    cos = min((float(s["cosine"]), s["layer"], s["stage"]) for s in stages)
    print(f"worst NMSE {worst[0]:.3e} at L{worst[1]} {worst[2]}; lowest cosine {cos[0]:.12f} at L{cos[1]} {cos[2]}")
    record_property("metric.nmse_max", worst[0])
    record_property("metric.cosine_min", cos[0])
    # pv validate enforces the contract's bound on the recorded metric; the same bound
    # (passed as PV_THRESHOLD_NMSE_MAX) also makes a plain `pytest` run fail.
    limit = float(os.environ.get("PV_THRESHOLD_NMSE_MAX", "1e-10"))
    assert worst[0] <= limit, f"worst NMSE {worst[0]:.3e} at L{worst[1]} {worst[2]} exceeds {limit:g}"


def bisect(pv, ref, cand):
    r = run([pv, "bisect", "--json", ref, cand], ok=(0, 1))
    out = json.loads(r.stdout)
    assert (r.returncode == 1) == (out["first_divergence"] is not None), r.stdout[:2000]
    return out


def test_bisect_names_planted_bug(traces, record_property):
    clean = bisect(traces["pv"], traces["ref"], traces["engine"])
    assert clean["first_divergence"] is None, f"the clean engine diverges: {clean['first_divergence']}"
    bugged = engine_trace(traces["dir"] / f"engine-{PLANTED}.safetensors", bug=PLANTED)
    out = bisect(traces["pv"], traces["ref"], bugged)
    fd = out["first_divergence"]
    assert fd is not None, "bisect found no divergence with the RoPE pairing bug planted"
    rows = [(s["layer"], s["stage"], s["nmse"], s["diverged"]) for s in out["stages"]]
    print("\n".join(f"L{l} {st:20s} nmse={n} diverged={d}" for l, st, n, d in rows[:8]))
    record_property("metric.bugged_nmse_at_divergence", float(fd["nmse"]))
    # The bug rotates the wrong pairs of q and k; q_post_rope is the first of the two in
    # computation order, and nothing before RoPE may move.
    assert (fd["layer"], fd["stage"]) == (0, "q_post_rope"), fd


def test_argmax_matches_pv(traces):
    pv_t, pv_meta, _ = read_safetensors(traces["ref"])
    mine, meta, _ = read_safetensors(traces["engine"])
    pv_arg = np.argmax(pv_t["lm_head"], axis=-1)
    my_arg = np.argmax(mine["lm_head"], axis=-1)
    assert pv_arg.tolist() == my_arg.tolist(), f"per-position argmax: pv {pv_arg.tolist()}, engine {my_arg.tolist()}"
    # The greedy continuation compounds every position's choice over MAX_NEW steps.
    assert json.loads(meta["greedy_tokens"]) == json.loads(pv_meta["greedy_tokens"])
