"""A tiny ReferIt manual dir in Hu et al.'s layout, with predicted masks
whose scores are computed by hand below."""

import json
import os

import numpy as np
from PIL import Image

# Image 1 is 4 x 6 (height x width), image 2 is 5 x 3.
MASKS = {
    # 6 pixels: rows 0-1, columns 0-2.
    "1_1": np.pad(np.ones((2, 3), bool), ((0, 2), (0, 3))),
    # 6 pixels: row 3.
    "1_2": np.pad(np.ones((1, 6), bool), ((3, 0), (0, 0))),
    # 10 pixels: columns 0-1.
    "2_1": np.pad(np.ones((5, 2), bool), ((0, 0), (0, 1))),
}
QUERIES = {
    "1_1": ["the left box", "top left"],
    "1_2": ["bottom"],
    "2_1": ["left part"],
}
IMCROPS = {"1.jpg": ["1_1", "1_2"], "2.jpg": ["2_1"]}


def _predictions():
    wide = np.zeros((4, 6), bool)
    wide[:2, :] = True
    partial = np.zeros((5, 3), bool)
    partial[:4, :2] = True
    partial[4, 2] = True
    return {
        # Exact: I = 6, U = 6.
        "1_1__0.png": MASKS["1_1"],
        # Rows 0-1: I = 6, U = 12.
        "1_1__1.png": wide,
        # Empty: I = 0, U = 6.
        "1_2__0.png": np.zeros((4, 6), bool),
        # Rows 0-3 of columns 0-1 and pixel (4, 2): I = 8, U = 11.
        "2_1__0.png": partial,
    }


PAIR_IOUS = (1.0, 0.5, 0.0, 8 / 11)
EXPECTED = {
    "num_pairs": 4,
    "overall_iou": (6 + 6 + 0 + 8) / (6 + 12 + 6 + 11),
    "precision@0.5": 3 / 4,
    "precision@0.6": 2 / 4,
    "precision@0.7": 2 / 4,
    "precision@0.8": 1 / 4,
    "precision@0.9": 1 / 4,
    "mean_iou": sum(PAIR_IOUS) / 4,
}
PREDICTION_NAMES = tuple(sorted(_predictions()))


def _save_prediction(path, mask, mode):
    """Writes `mask` in Pillow `mode`: the object non-zero in one way or
    another (255 grey, 1-bit, red only, palette colour)."""
    if mode == "RGB":
        pixels = np.zeros(mask.shape + (3,), np.uint8)
        pixels[..., 0] = np.where(mask, 7, 0)
        Image.fromarray(pixels).save(path)
    elif mode == "1":
        Image.fromarray(mask).convert("1").save(path)
    else:
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).convert(
            mode
        ).save(path)


def write(root, readable_masks=True):
    """Writes manual_dir/ and predictions/ under `root`; returns both paths.

    readable_masks: write the masks with scipy.io.savemat; False writes
    placeholders, for checks that fail before any mask is read.
    """
    manual_dir = os.path.join(root, "manual")
    mask_dir = os.path.join(manual_dir, "mask")
    pred_dir = os.path.join(root, "predictions")
    os.makedirs(mask_dir)
    os.makedirs(pred_dir)
    with open(os.path.join(manual_dir, "referit_query_test.json"), "w") as f:
        json.dump(QUERIES, f)
    with open(os.path.join(manual_dir, "referit_imcrop.json"), "w") as f:
        json.dump(IMCROPS, f)
    for imcrop, mask in MASKS.items():
        path = os.path.join(mask_dir, f"{imcrop}.mat")
        if readable_masks:
            import scipy.io

            # Hu et al.'s masks: 0 on the object.
            segmentation = np.where(mask, 0, 1).astype(np.uint8)
            scipy.io.savemat(path, {"segimg_t": segmentation})
        else:
            with open(path, "wb") as f:
                f.write(b"placeholder: never read")
    modes = ("L", "1", "P", "RGB")
    for (name, mask), mode in zip(
        sorted(_predictions().items()), modes, strict=True
    ):
        _save_prediction(os.path.join(pred_dir, name), mask, mode)
    return manual_dir, pred_dir
