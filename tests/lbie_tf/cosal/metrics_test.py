"""Tests of the CoSaL metrics against NumPy brute force."""

import keras
import numpy as np
import pytest

from lbie_tf.cosal.metrics import ColorMeanIoU, ShapeAverageIoU


def _random_batch(rng, batch, size=12, grid=3, num_colors=6):
    """Random CoSaL-like labels: one shape (a random blob) per cell."""
    cell = size // grid
    shape_labels = np.zeros((batch, size, size), np.int32)
    color_labels = np.zeros((batch, size, size), np.int32)
    for b in range(batch):
        shapes = rng.permutation(9)
        for k in range(grid * grid):
            row, col = divmod(k, grid)
            blob = rng.random((cell, cell)) < 0.5
            blob[cell // 2, cell // 2] = True
            colour = rng.integers(1, num_colors + 1)
            ys, xs = row * cell, col * cell
            shape_labels[b, ys : ys + cell, xs : xs + cell][blob] = (
                shapes[k] + 1
            )
            color_labels[b, ys : ys + cell, xs : xs + cell][blob] = colour
    return color_labels, shape_labels


def _numpy_color_miou(true_batches, pred_batches, num_classes):
    ious = []
    for c in range(num_classes):
        tp = fp = fn = 0
        for y, p in zip(true_batches, pred_batches, strict=True):
            tp += np.sum((y == c) & (p == c))
            fp += np.sum((y != c) & (p == c))
            fn += np.sum((y == c) & (p != c))
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    return np.mean(ious)


def _numpy_shape_iou(colors, shapes, preds, grid=3):
    """Pixel loops written from spec section 3's definition."""
    inter = np.zeros(10)
    union = np.zeros(10)
    for color_map, shape_map, pred in zip(colors, shapes, preds, strict=True):
        size = color_map.shape[0]
        cell = size // grid
        for k in range(1, 10):
            ys, xs = np.nonzero(shape_map == k)
            true_colour = color_map[ys[0], xs[0]]
            row, col = ys[0] // cell, xs[0] // cell
            for y in range(size):
                for x in range(size):
                    in_shape = shape_map[y, x] == k
                    in_cell = y // cell == row and x // cell == col
                    hit = pred[y, x] == true_colour
                    inter[k] += in_shape and hit
                    union[k] += in_shape or (in_cell and hit)
        background = shape_map == 0
        inter[0] += np.sum(background & (pred == 0))
        union[0] += np.sum(background | (pred == 0))
    return np.mean(inter / union)


def test_color_mean_iou_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    metric = ColorMeanIoU(num_classes=7)
    trues, preds = [], []
    for _ in range(3):
        colors, _ = _random_batch(rng, 2)
        logits = rng.normal(size=colors.shape + (7,)).astype("float32")
        metric.update_state(colors, logits)
        trues.append(colors)
        preds.append(np.argmax(logits, -1))
    expected = _numpy_color_miou(trues, preds, 7)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_color_mean_iou_skips_absent_classes():
    metric = ColorMeanIoU(num_classes=4)
    labels = np.array([[[0, 1], [1, 0]]])
    metric.update_state(labels, labels)
    assert float(metric.result()) == pytest.approx(1.0)


def test_shape_iou_matches_numpy_brute_force():
    rng = np.random.default_rng(1)
    metric = ShapeAverageIoU()
    colors_all, shapes_all, preds_all = [], [], []
    for _ in range(2):
        colors, shapes = _random_batch(rng, 2)
        # A prediction that is right on about half the pixels.
        noise = rng.integers(0, 7, size=colors.shape)
        preds = np.where(rng.random(colors.shape) < 0.5, colors, noise)
        metric.update_state(colors, shapes, preds)
        colors_all += list(colors)
        shapes_all += list(shapes)
        preds_all += list(preds)
    expected = _numpy_shape_iou(colors_all, shapes_all, preds_all)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-6)


def test_shape_iou_perfect_prediction_is_one_and_accepts_logits():
    rng = np.random.default_rng(2)
    colors, shapes = _random_batch(rng, 2)
    logits = keras.ops.one_hot(colors, 7) * 5.0
    metric = ShapeAverageIoU()
    metric.update_state(colors, shapes, logits)
    assert float(metric.result()) == pytest.approx(1.0)


def test_metric_configs_round_trip_and_bad_arguments():
    for metric in (ColorMeanIoU(num_classes=5), ShapeAverageIoU(grid_size=3)):
        clone = metric.__class__.from_config(metric.get_config())
        assert clone.get_config() == metric.get_config()
    with pytest.raises(ValueError, match="num_classes"):
        ColorMeanIoU(num_classes=1)
    with pytest.raises(ValueError, match="grid_size"):
        ShapeAverageIoU(grid_size=0)
    with pytest.raises(ValueError, match="grid_size"):
        ShapeAverageIoU().update_state(
            np.zeros((1, 10, 10)), np.zeros((1, 10, 10)), np.zeros((1, 10, 10))
        )
