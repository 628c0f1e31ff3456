"""Tests of Hu et al.'s ReferIt scores on hand-computed pairs."""

import numpy as np
import pytest

from lbie_tf.referit import metrics

KEYS = [
    "num_pairs",
    "overall_iou",
    "precision@0.5",
    "precision@0.6",
    "precision@0.7",
    "precision@0.8",
    "precision@0.9",
    "mean_iou",
]


def _scores(*pairs):
    scores = metrics.ReferitScores()
    for prediction, mask in pairs:
        scores.update(np.asarray(prediction), np.asarray(mask))
    return scores.result()


def _expected(num_pairs, overall_iou, precisions, mean_iou):
    return dict(
        zip(KEYS, [num_pairs, overall_iou, *precisions, mean_iou], strict=True)
    )


def test_result_keys_in_order():
    results = _scores(([[1]], [[1]]))
    assert list(results) == KEYS


def test_exact_match():
    mask = np.array([[0, 1, 1], [0, 1, 0]], bool)
    assert _scores((mask, mask)) == _expected(1, 1.0, [1.0] * 5, 1.0)


def test_empty_prediction():
    mask = np.array([[0, 1], [1, 1]], bool)
    assert _scores((np.zeros_like(mask), mask)) == _expected(
        1, 0.0, [0.0] * 5, 0.0
    )


def test_empty_mask():
    prediction = np.array([[1, 1], [0, 0]], bool)
    assert _scores((prediction, np.zeros_like(prediction))) == _expected(
        1, 0.0, [0.0] * 5, 0.0
    )


def test_both_empty_counts_and_misses_every_threshold():
    empty = np.zeros((3, 3), bool)
    # Alone: 0 / 0 pairs, overall IoU 0 (not nan), mean IoU 0.
    assert _scores((empty, empty)) == _expected(1, 0.0, [0.0] * 5, 0.0)
    # With an exact match: it halves every precision and the mean IoU, and
    # adds nothing to sum(I) or sum(U).
    full = np.ones((3, 3), bool)
    assert _scores((empty, empty), (full, full)) == _expected(
        2, 1.0, [0.5] * 5, 0.5
    )


def test_half_overlap():
    mask = np.ones((2, 4), bool)
    prediction = np.zeros((2, 4), bool)
    prediction[:, :2] = True
    # I = 4, U = 8: IoU 0.5 reaches precision@0.5 (>=) and nothing above.
    assert _scores((prediction, mask)) == _expected(
        1, 0.5, [1.0, 0.0, 0.0, 0.0, 0.0], 0.5
    )


def test_three_pairs_where_overall_and_mean_iou_differ():
    # Pair 1: I = 1, U = 2 (0.5). Pair 2: I = 8, U = 10 (0.8).
    # Pair 3: I = 0, U = 4 (0).
    pair_1 = ([[1, 1]], [[1, 0]])
    prediction_2 = np.zeros((2, 5), bool)
    prediction_2.flat[:8] = True
    pair_2 = (prediction_2, np.ones((2, 5), bool))
    pair_3 = ([[1, 1, 0, 0]], [[0, 0, 1, 1]])
    results = _scores(pair_1, pair_2, pair_3)
    assert results["num_pairs"] == 3
    # sum(I) / sum(U) = 9 / 16; the mean of 0.5, 0.8 and 0 is 1.3 / 3.
    assert results["overall_iou"] == pytest.approx(9 / 16)
    assert results["mean_iou"] == pytest.approx(1.3 / 3)
    assert results["precision@0.5"] == pytest.approx(2 / 3)
    for threshold in (0.6, 0.7, 0.8):
        assert results[f"precision@{threshold}"] == pytest.approx(1 / 3)
    assert results["precision@0.9"] == 0.0


def test_thresholds_are_inclusive_at_exact_fractions():
    # I / U = 3 / 5 = 0.6 and 7 / 10 = 0.7 reach their own threshold.
    for hits, total, threshold in ((3, 5, 0.6), (7, 10, 0.7), (9, 10, 0.9)):
        prediction = np.zeros(total, bool)
        prediction[:hits] = True
        results = _scores((prediction, np.ones(total, bool)))
        assert results[f"precision@{threshold}"] == 1.0


def test_update_returns_intersection_and_union_and_accepts_numbers():
    scores = metrics.ReferitScores()
    assert scores.update(np.array([0, 2, 5]), np.array([0.0, 1.0, 0.0])) == (
        1,
        2,
    )


def test_shape_mismatch_and_no_pairs_are_errors():
    scores = metrics.ReferitScores()
    with pytest.raises(ValueError, match=r"\(2, 2\) vs \(2, 3\)"):
        scores.update(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no pair"):
        scores.result()


def test_reset():
    scores = metrics.ReferitScores()
    scores.update(np.ones(2), np.ones(2))
    scores.reset()
    scores.update(np.zeros(2), np.ones(2))
    assert scores.result()["overall_iou"] == 0.0
