"""Whole-split scores of a flowers model: L1 on ab, this project's
consistency protocol (caption colour match, PSNR, SSIM, colourfulness:
`consistency`), and for the isoluminant CoSaL source the per-shape colour
accuracy read from the predicted ab."""

import numpy as np

from data_builders.cosal import vocabulary as cosal_vocabulary
from lbie_tf.flowers import consistency, datasets, input_pipeline, lab

GRID_SIZE = 3


def shape_colors(ab, color_labels, num_colors):
    """The colour each CoSaL cell's shape was given: per cell (3 x 3 grid)
    the mean predicted ab over the shape's pixels, read as the nearest
    isoluminant palette colour.

    Args:
      ab: float [B, S, S, 2] normalised predicted ab.
      color_labels: int [B, S, S], 0 background, c + 1 colour c.

    Returns:
      int [B, 9]: the colour index of each cell's shape, -1 where a cell
      has no shape pixels.
    """
    palette = lab.normalize_ab(datasets.isoluminant_ab(num_colors)[1:])
    palette = np.asarray(palette, dtype=np.float32)
    batch, size = color_labels.shape[0], color_labels.shape[1]
    cell = size // GRID_SIZE
    colors = np.full((batch, GRID_SIZE * GRID_SIZE), -1, np.int64)
    for row in range(GRID_SIZE):
        for column in range(GRID_SIZE):
            window = (
                slice(None),
                slice(row * cell, (row + 1) * cell),
                slice(column * cell, (column + 1) * cell),
            )
            shape = color_labels[window] > 0
            count = shape.sum(axis=(1, 2))
            total = (ab[window] * shape[..., None]).sum(axis=(1, 2))
            mean = total / np.maximum(count, 1)[:, None]
            distances = ((mean[:, None, :] - palette[None]) ** 2).sum(-1)
            nearest = distances.argmin(axis=1)
            colors[:, row * GRID_SIZE + column] = np.where(
                count > 0, nearest, -1
            )
    return colors


def _to_uint8(rgb):
    return np.clip(np.round(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)


def evaluate_model(model, dataset, source, num_colors):
    """Scores `model` on every batch of `dataset`
    (`datasets.evaluation_dataset`).

    Returns:
      {"num_examples", "l1" (mean |ab - ab_hat| in normalised units),
      "l1_lab" (the same in Lab units)} and, for flowers, the
      `consistency.summary` keys; for CoSaL "shape_color_accuracy" (shapes
      whose predicted colour is their true one), "num_shapes",
      "num_colors" and "shape_color_accuracy_by_shape" (the same per shape
      name, None for a shape never scored).
    """
    absolute, pixels, examples = 0.0, 0, 0
    colorized, originals, captions = [], [], []
    num_shape_kinds = len(cosal_vocabulary.SHAPE_NAMES)
    correct = np.zeros(num_shape_kinds, np.int64)
    shapes = np.zeros(num_shape_kinds, np.int64)
    for inputs, targets in dataset:
        predicted = model(inputs, training=False)["ab"]
        predicted = np.asarray(predicted, dtype=np.float32)
        true_ab = targets["ab"].numpy()
        absolute += float(np.abs(predicted - true_ab).sum())
        pixels += true_ab.size
        examples += true_ab.shape[0]
        if source == "cosal_isoluminant":
            found = shape_colors(
                predicted, targets["color_labels"].numpy(), num_colors
            )
            truth = targets["cell_colors"].numpy()
            kinds = targets["cell_shapes"].numpy()
            scored = found >= 0
            right = (found == truth) & scored
            correct += np.bincount(kinds[right], minlength=num_shape_kinds)
            shapes += np.bincount(kinds[scored], minlength=num_shape_kinds)
            continue
        lightness = inputs["lightness"]
        colorized.extend(_to_uint8(input_pipeline.to_rgb(lightness, predicted)))
        originals.extend(_to_uint8(input_pipeline.to_rgb(lightness, true_ab)))
        captions.extend(
            caption.decode("utf-8") for caption in targets["caption"].numpy()
        )
    l1 = absolute / max(pixels, 1)
    results = {
        "num_examples": examples,
        "l1": l1,
        "l1_lab": l1 * lab.AB_SCALE,
    }
    if source == "cosal_isoluminant":
        results.update(
            shape_color_accuracy=int(correct.sum()) / max(int(shapes.sum()), 1),
            num_shapes=int(shapes.sum()),
            num_colors=num_colors,
            shape_color_accuracy_by_shape={
                name: int(right) / int(count) if count else None
                for name, right, count in zip(
                    cosal_vocabulary.SHAPE_NAMES, correct, shapes, strict=True
                )
            },
        )
    else:
        results.update(consistency.summary(colorized, originals, captions))
    return results
