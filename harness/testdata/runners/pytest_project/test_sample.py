# A tiny pytest suite bound by harness/testdata/runners-pytest.yaml: one test per outcome
# pv must tell apart.
import os

import pytest


def test_passes():
    assert sum([1, 2, 3]) == 6


def test_fails():
    observed = 2 + 2
    assert observed == 5, f"2 + 2 gave {observed}, expected 5"


def test_skips_fixture_absent():
    pytest.skip("fixture-absent: tiny-model")


def test_skips_without_reason():
    pytest.skip("not today")


def test_records_metric(record_property):
    # The bound from the contract arrives as PV_THRESHOLD_ERR_MAX; the test records what
    # it measured and leaves the verdict to pv.
    err = float(os.environ.get("PYTEST_SAMPLE_ERR", "0.001"))
    record_property("metric.err_max", err)


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n > 0
