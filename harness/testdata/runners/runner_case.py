#!/usr/bin/env python3
# One test case for the ctest and plain-command fixtures: its first argument picks the
# outcome, and it reports through pv's result file protocol (PV_RESULT_FILE) when asked.
import json
import os
import sys


def result(**fields):
    path = os.environ.get("PV_RESULT_FILE")
    if path:
        with open(path, "w") as f:
            json.dump(fields, f)


mode = sys.argv[1] if len(sys.argv) > 1 else "pass"
if mode == "pass":
    sys.exit(0)
if mode == "fail":
    print("checksum 0x1f != 0x2e for block 3")
    result(failure="checksum 0x1f != 0x2e for block 3", counterexample="block=3")
    sys.exit(1)
if mode == "skip":
    result(skip_reason="fixture-absent: tiny-model")
    sys.exit(77)
if mode == "skip-unexplained":
    sys.exit(77)
if mode == "metric":
    # PV_CASE_ERR lets a test push the metric past the contract's bound.
    err = float(os.environ.get("PV_CASE_ERR", "0.001"))
    print("threshold given:", os.environ.get("PV_THRESHOLD_ERR_MAX"))
    result(metrics={"err_max": err}, seed=int(os.environ.get("PV_SEED", "0")))
    sys.exit(0)
if mode == "mark":
    # Leaves a file behind: proves whether anything ran.
    with open(sys.argv[2], "w") as f:
        f.write("ran\n")
    sys.exit(0)
print("unknown mode", mode)
sys.exit(2)
