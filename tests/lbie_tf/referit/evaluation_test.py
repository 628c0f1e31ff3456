"""Tests of ReferIt's evaluation library: predicted masks, Hu et al.'s
files and the scoring of a folder of predictions."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from lbie_tf.core import errors
from lbie_tf.referit import evaluation
from tests.lbie_tf.referit import fake_manual_dir, skimage_reference


def _needs_scipy():
    return pytest.importorskip(
        "scipy.io",
        reason="scipy (reads and writes ReferIt's .mat masks) is not "
        "installed in this environment",
    )


def test_predicted_mask_thresholds_logits_at_zero_then_inverts():
    logits = np.random.default_rng(0).normal(size=(512, 512))
    logits[0, 0] = 0.0  # Exactly 0 is background (sigmoid 0.5 is not > 0.5).
    mask = evaluation.predicted_mask(logits, 37, 91)
    assert mask.shape == (37, 91)
    assert mask.dtype == bool
    np.testing.assert_array_equal(
        mask, skimage_reference.resize_and_crop(logits > 0, 37, 91) != 0
    )


def test_score_masks():
    mask = np.ones((2, 2), bool)
    results = evaluation.score_masks([(mask, mask), (~mask, mask)])
    assert results["num_pairs"] == 2
    assert results["overall_iou"] == 0.5
    assert results["mean_iou"] == 0.5


def test_expression_pairs_keep_repeated_expressions():
    queries = {"2_1": ["far right person", "far right person"], "1_3": ["x"]}
    assert evaluation.expression_pairs(queries) == [
        ("1_3", 0),
        ("2_1", 0),
        ("2_1", 1),
    ]


def test_read_queries_errors(tmp_path):
    with pytest.raises(errors.UserError, match="no query file"):
        evaluation.read_queries(str(tmp_path), "test")
    path = tmp_path / "referit_query_test.json"
    path.write_text("{not json")
    with pytest.raises(errors.UserError, match="not valid JSON"):
        evaluation.read_queries(str(tmp_path), "test")
    path.write_text(json.dumps({"1_1": "a string, not a list"}))
    with pytest.raises(errors.UserError, match="list of expressions"):
        evaluation.read_queries(str(tmp_path), "test")
    # The first release of Hu et al.'s files: names with .png.
    path.write_text(json.dumps({"30993_2.png": ["tallest bldng"]}))
    with pytest.raises(errors.UserError, match=r"end in \.png \(30993_2"):
        evaluation.read_queries(str(tmp_path), "test")


@pytest.mark.parametrize("mode", ["L", "1", "P", "RGB", "RGBA", "LA", "I;16"])
def test_read_prediction_any_non_zero_value_is_object(tmp_path, mode):
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    if mode in ("RGB", "RGBA"):
        pixels = np.zeros((3, 4, len(mode)), np.uint8)
        pixels[..., 2] = np.where(mask, 1, 0)  # Blue 1 only.
        if mode == "RGBA":
            pixels[..., 3] = 0  # Alpha is ignored.
        image = Image.fromarray(pixels, mode)
    elif mode == "LA":
        pixels = np.stack([np.where(mask, 9, 0), np.full((3, 4), 255)], -1)
        image = Image.fromarray(pixels.astype(np.uint8), "LA")
    elif mode == "I;16":
        image = Image.fromarray(np.where(mask, 300, 0).astype(np.uint16))
    else:
        grey = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
        image = grey.convert(mode)
    path = str(tmp_path / "pred.png")
    image.save(path)
    np.testing.assert_array_equal(
        evaluation.read_prediction(path, 3, 4, "mask.mat"), mask
    )


def test_read_prediction_names_both_sizes(tmp_path):
    path = str(tmp_path / "7_1__0.png")
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(path)
    with pytest.raises(errors.ImageError) as caught:
        evaluation.read_prediction(path, 4, 3, "mask/7_1.mat")
    message = str(caught.value)
    assert path in message and "mask/7_1.mat" in message
    assert "4x3 pixels" in message and "is 3x4" in message


def test_read_prediction_unreadable(tmp_path):
    path = tmp_path / "7_1__0.png"
    path.write_bytes(b"not a png")
    with pytest.raises(errors.ImageError, match="not a readable image"):
        evaluation.read_prediction(str(path), 4, 3, "mask/7_1.mat")


def test_missing_predictions_are_counted_and_named(tmp_path):
    manual_dir, pred_dir = fake_manual_dir.write(
        str(tmp_path), readable_masks=False
    )
    os.remove(os.path.join(pred_dir, "1_1__1.png"))
    os.remove(os.path.join(pred_dir, "2_1__0.png"))
    with pytest.raises(errors.UserError) as caught:
        evaluation.score_prediction_dir(pred_dir, manual_dir, "test")
    message = str(caught.value)
    assert "2 of 4 predictions are missing" in message
    assert "1_1__1.png, 2_1__0.png" in message


def test_missing_masks_are_counted_and_named(tmp_path):
    manual_dir, pred_dir = fake_manual_dir.write(
        str(tmp_path), readable_masks=False
    )
    os.remove(os.path.join(manual_dir, "mask", "1_2.mat"))
    with pytest.raises(errors.UserError, match=r"1 of 3 masks .*: 1_2\.mat"):
        evaluation.score_prediction_dir(pred_dir, manual_dir, "test")


def test_score_prediction_dir_matches_hand_computed_scores(tmp_path):
    _needs_scipy()
    manual_dir, pred_dir = fake_manual_dir.write(str(tmp_path))
    calls = []
    results = evaluation.score_prediction_dir(
        pred_dir,
        manual_dir,
        "test",
        progress=lambda done, total: calls.append((done, total)),
        progress_every=3,
    )
    assert results == pytest.approx(fake_manual_dir.EXPECTED)
    assert list(results) == list(fake_manual_dir.EXPECTED)
    assert calls == [(3, 4), (4, 4)]


def test_read_mask_is_where_segimg_t_is_zero(tmp_path):
    scipy_io = _needs_scipy()
    path = str(tmp_path / "3_1.mat")
    scipy_io.savemat(path, {"segimg_t": np.array([[0, 1], [2, 0]], np.uint8)})
    np.testing.assert_array_equal(
        evaluation.read_mask(path), [[True, False], [False, True]]
    )
    scipy_io.savemat(path, {"other": np.zeros((2, 2))})
    with pytest.raises(errors.UserError, match="no 'segimg_t'"):
        evaluation.read_mask(path)
