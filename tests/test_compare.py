import numpy as np

from export_kit.folder.precision import DEFAULT_TOLERANCES, Tolerance, default_tolerance
from export_kit.verification.compare import parity


def test_identical_outputs_have_zero_error_and_full_agreement():
    ref = np.random.default_rng(0).normal(size=(50, 10)).astype(np.float32)
    p = parity(ref, ref.copy())
    assert p.max_abs_err == 0 and p.p99_abs_err == 0 and p.top1_agreement == 1.0 and p.nonfinite == 0
    assert abs(p.cosine - 1.0) < 1e-12


def test_known_perturbation_is_measured_exactly():
    ref = np.zeros((4, 3), np.float32)
    ref[:, 0] = 1.0
    cand = ref.copy()
    cand[2] = [0.0, 2.0, 0.0]  # one sample flips its top-1 class
    p = parity(ref, cand)
    assert p.max_abs_err == 2.0
    assert p.top1_agreement == 0.75
    assert p.cosine == 0.0


def test_nonfinite_outputs_count_and_never_pass_a_bound():
    ref = np.ones((10, 10), np.float32)
    cand = ref.copy()
    cand[3, 4] = np.nan
    p = parity(ref, cand)
    assert p.nonfinite == 1
    assert p.max_abs_err == float("inf")
    assert p.top1_agreement == 0.9


def test_default_tolerances_per_precision_and_overrides():
    assert default_tolerance("fp32").max_abs == 1e-4
    assert default_tolerance("int8").min_top1_agreement == 0.97
    assert default_tolerance("int8").max_accuracy_drop == 1.0
    assert set(DEFAULT_TOLERANCES) >= {"fp32", "int8"}
    assert Tolerance(max_abs=1e-4).with_overrides(max_abs=1e-3, min_top1_agreement=None).max_abs == 1e-3


def test_agreement_budget_is_judged_beyond_sampling_noise():
    from export_kit.verification.stats import agreement_below

    assert agreement_below(63 / 64, 64, 1.0)  # fp32: one disagreement fails
    assert not agreement_below(1.0, 64, 1.0)
    assert not agreement_below(61 / 64, 64, 0.97)  # 3 of 64 cannot establish < 97%
    assert agreement_below(0.95, 10_000, 0.97)  # 500 of 10,000 can
