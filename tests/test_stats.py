import math

import numpy as np

from export_kit.verification.stats import mcnemar_exact, per_class_accuracy, wilson_interval


def test_wilson_interval_matches_the_closed_form_and_stays_in_bounds():
    lo, hi = wilson_interval(50, 100)
    assert math.isclose(lo, 0.4038, abs_tol=1e-4) and math.isclose(hi, 0.5962, abs_tol=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and math.isclose(wilson_interval(10, 10)[1], 1.0)
    assert wilson_interval(10, 10)[0] > 0.65


def test_mcnemar_counts_discordant_pairs_and_gives_exact_p_values():
    ref = np.array([True] * 10 + [False] * 10)
    same = mcnemar_exact(ref, ref.copy())
    assert same == {"ref_only_correct": 0, "artifact_only_correct": 0, "p_value": 1.0}
    cand = ref.copy()
    cand[:6] = False  # six images only the reference gets right, none the other way
    result = mcnemar_exact(ref, cand)
    assert result["ref_only_correct"] == 6 and result["artifact_only_correct"] == 0
    assert math.isclose(result["p_value"], 2 * 0.5**6)
    balanced = ref.copy()
    balanced[:3] = False
    balanced[10:13] = True
    assert mcnemar_exact(ref, balanced)["p_value"] == 1.0


def test_per_class_accuracy():
    labels = np.array([0, 0, 1, 1])
    assert per_class_accuracy(labels, np.array([0, 1, 1, 1]), 3) == [0.5, 1.0, None]
