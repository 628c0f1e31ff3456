"""ReferIt's evaluation at the original image resolution, as Hu et al. 2016
scored it: model logits to masks, and a folder of predicted masks scored."""

import io
import json
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from lbie_tf.core import errors
from lbie_tf.referit import input_pipeline, metrics

# The .mat key of a ground-truth mask; the object is where it is 0.
MASK_KEY = "segimg_t"
# How many missing files an error message lists.
_SHOWN_MISSING = 5
_PREDICTION_NAMING = (
    "one PNG per pair, named <imcrop>__<expression index>.png, at the "
    "image's original size"
)


def predicted_mask(logits_512, height, width):
    """The mask a model predicts at the original size: bool [height, width].

    Hu et al.'s rule: foreground where the logit is > 0 (sigmoid >= 0.5) in
    the 512 x 512 frame (a small model's S x S frame, S read from the
    logits' shape), then `input_pipeline.prediction_to_original`.
    """
    logits = tf.convert_to_tensor(logits_512)
    return input_pipeline.prediction_to_original(
        logits > 0, height, width, image_size=int(logits.shape[0])
    ).numpy()


def score_masks(pairs):
    """Hu et al.'s scores of (prediction, mask) pairs at original size, both
    non-zero = object: `metrics.ReferitScores.result()`."""
    scores = metrics.ReferitScores()
    for prediction, mask in pairs:
        scores.update(prediction, mask)
    return scores.result()


# --- Files of Hu et al.'s layout -------------------------------------------


def query_path(manual_dir, split):
    return os.path.join(manual_dir, f"referit_query_{split}.json")


def mask_path(manual_dir, imcrop):
    return os.path.join(manual_dir, "mask", f"{imcrop}.mat")


def prediction_name(imcrop, expression_index):
    """The file name of a pair's predicted mask: <imcrop>__<index>.png."""
    return f"{imcrop}__{expression_index}.png"


def read_queries(manual_dir, split):
    """{imcrop: [expression, ...]} of referit_query_<split>.json.

    Raises:
      UserError: the file is missing or is not such a JSON object.
    """
    path = query_path(manual_dir, split)
    if not tf.io.gfile.exists(path):
        raise errors.UserError(
            f"no query file {path} for split {split!r}; --manual_dir must "
            "hold Hu et al.'s referit_query_<split>.json files."
        )
    with tf.io.gfile.GFile(path, "rb") as file:
        data = file.read()
    try:
        queries = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.UserError(f"{path} is not valid JSON: {error}") from None
    valid = isinstance(queries, dict) and all(
        isinstance(expressions, list)
        and all(isinstance(text, str) for text in expressions)
        for expressions in queries.values()
    )
    if not valid:
        raise errors.UserError(
            f"{path} must map each imcrop name to a list of expressions."
        )
    stale = [key for key in queries if key.endswith(".png")]
    if stale:
        # The first (2016) release of Hu et al.'s files named regions
        # "<id>_<region>.png"; the current ones, which the ReferIt builder
        # reads too, have no extension.
        raise errors.UserError(
            f"{path}: region names end in .png ({stale[0]}): this is the "
            "first version of Hu et al.'s text_objseg files; take the "
            "current exp-referit/data/ files, whose names have no extension."
        )
    return queries


def expression_pairs(queries):
    """Every (imcrop, expression index) of `queries`, sorted.

    The index is the expression's position in its region's list; a region
    with the same expression twice has two pairs, as in Hu et al.'s
    evaluation. Hu et al. walked the regions through referit_imcrop.json,
    image by image; the order changes no score.
    """
    return [
        (imcrop, index)
        for imcrop in sorted(queries)
        for index in range(len(queries[imcrop]))
    ]


def _missing_error(what, folder, missing, total, hint):
    shown = ", ".join(missing[:_SHOWN_MISSING])
    more = ", ..." if len(missing) > _SHOWN_MISSING else ""
    return errors.UserError(
        f"{len(missing)} of {total} {what} are missing from {folder}: "
        f"{shown}{more} ({hint})."
    )


def _listing(folder, what):
    if not tf.io.gfile.isdir(folder):
        raise errors.UserError(f"{what} {folder} is not a directory.")
    return set(tf.io.gfile.listdir(folder))


def read_mask(path):
    """A ground-truth mask: bool [H, W], True where segimg_t == 0.

    Raises:
      UserError: the file cannot be read or holds no 2-D segimg_t.
    """
    # Imported here: only the .mat masks need scipy, and the rest of the
    # evaluation (predicted_mask, score_masks) works without it.
    try:
        import scipy.io
    except ImportError as error:
        raise ImportError(
            "reading ReferIt's .mat masks needs scipy (pip install -r "
            "requirements.txt)."
        ) from error
    with tf.io.gfile.GFile(path, "rb") as file:
        data = file.read()
    try:
        segmentation = scipy.io.loadmat(io.BytesIO(data))[MASK_KEY]
    except KeyError:
        raise errors.UserError(
            f"mask file {path} has no {MASK_KEY!r} array."
        ) from None
    except (
        scipy.io.matlab.MatReadError,
        ValueError,
        TypeError,
        OSError,
        EOFError,
    ) as error:
        raise errors.UserError(
            f"mask file {path} is not a readable .mat file ({error})."
        ) from None
    if segmentation.ndim != 2:
        raise errors.UserError(
            f"mask file {path}: {MASK_KEY} has shape {segmentation.shape}; "
            "expected (height, width)."
        )
    return segmentation == 0


def _foreground(image):
    """Non-zero pixels of a loaded Pillow image: any colour channel not 0,
    alpha ignored, a palette image by its colours."""
    if image.mode == "P":
        image = image.convert("RGBA")
    values = np.asarray(image)
    if values.ndim == 2:
        return values != 0
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        values = values[..., :-1]
    return np.any(values != 0, axis=-1)


def read_prediction(path, height, width, mask_file):
    """A predicted mask file as bool [height, width] (non-zero = object).

    Raises:
      ImageError: the file is unreadable or not height x width pixels (the
        message names the file, its size and that of `mask_file`).
    """
    with tf.io.gfile.GFile(path, "rb") as file:
        data = file.read()
    unreadable = (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    )
    try:
        image = Image.open(io.BytesIO(data))
    except unreadable as error:
        raise errors.ImageError(
            f"prediction {path} is not a readable image ({error})."
        ) from None
    # The size comes from the header: a wrong size is refused before any
    # pixel is decoded.
    if image.size != (width, height):
        raise errors.ImageError(
            f"prediction {path} is {image.size[0]}x{image.size[1]} pixels "
            f"(width x height) but its mask {mask_file} is {width}x{height}; "
            f"predictions are {_PREDICTION_NAMING}."
        )
    try:
        image.load()
    except unreadable as error:
        raise errors.ImageError(
            f"prediction {path} is not a readable image ({error})."
        ) from None
    return _foreground(image)


def score_prediction_dir(
    pred_dir, manual_dir, split="test", progress=None, progress_every=1000
):
    """Scores the predicted masks in `pred_dir` as Hu et al. 2016 did.

    Every (region, expression) pair of referit_query_<split>.json in
    `manual_dir` is one pair: its prediction is
    `pred_dir/<imcrop>__<expression index>.png` at the image's original
    size (non-zero = object, any method's output), its ground truth
    `manual_dir/mask/<imcrop>.mat` (segimg_t == 0).

    Args:
      pred_dir: the folder of predicted masks (other files are ignored).
      manual_dir: Hu et al.'s layout (referit_query_<split>.json, mask/).
      split: the query file's split name.
      progress: called as progress(done, total) every `progress_every`
        pairs and after the last one; None for silence.
      progress_every: pairs between two progress calls (>= 1).

    Returns:
      `metrics.ReferitScores.result()`: num_pairs, overall_iou,
      precision@0.5 .. precision@0.9, mean_iou (fractions).

    Raises:
      UserError: a missing or malformed query file; an empty split; missing
        masks or predictions (how many, and the first few names); a
        prediction of the wrong size or an unreadable file (named).
    """
    if progress_every < 1:
        raise ValueError(
            f"progress_every must be at least 1; received {progress_every}."
        )
    queries = read_queries(manual_dir, split)
    pairs = expression_pairs(queries)
    if not pairs:
        raise errors.UserError(
            f"{query_path(manual_dir, split)} lists no expression."
        )
    mask_dir = os.path.join(manual_dir, "mask")
    present = _listing(mask_dir, "mask directory")
    missing = [f"{r}.mat" for r in sorted(queries) if f"{r}.mat" not in present]
    if missing:
        raise _missing_error(
            "masks",
            mask_dir,
            missing,
            len(queries),
            "one <imcrop>.mat per region of the query file",
        )
    present = _listing(pred_dir, "prediction directory")
    names = [prediction_name(imcrop, index) for imcrop, index in pairs]
    missing = [name for name in names if name not in present]
    if missing:
        raise _missing_error(
            "predictions", pred_dir, missing, len(names), _PREDICTION_NAMING
        )

    scores = metrics.ReferitScores()
    mask_region, mask = None, None
    for done, ((imcrop, _), name) in enumerate(
        zip(pairs, names, strict=True), start=1
    ):
        # Pairs are sorted by region, so each mask is read once.
        if imcrop != mask_region:
            mask_region = imcrop
            mask = read_mask(mask_path(manual_dir, imcrop))
        prediction = read_prediction(
            os.path.join(pred_dir, name),
            mask.shape[0],
            mask.shape[1],
            mask_path(manual_dir, imcrop),
        )
        scores.update(prediction, mask)
        if progress is not None and (
            done % progress_every == 0 or done == len(pairs)
        ):
            progress(done, len(pairs))
    return scores.result()


# --- A model on the test split ----------------------------------------------


def evaluate_model(model, dataset):
    """Hu et al.'s scores of `model` over every pair of `dataset` (batches
    of `datasets.evaluation_dataset`): each pair's predicted mask brought
    back to the original resolution (`predicted_mask`) and scored against
    the original mask with `metrics.ReferitScores`.

    Returns:
      {num_examples (= num_pairs), num_pairs, overall_iou, precision@0.5 ..
      precision@0.9, mean_iou}.
    """
    scores = metrics.ReferitScores()
    for inputs, targets in dataset:
        logits = model(inputs, training=False)["logits"]
        logits = tf.cast(logits[..., 0], tf.float32)
        heights = targets["height"].numpy()
        widths = targets["width"].numpy()
        masks = targets["mask"].numpy()
        for index, (height, width) in enumerate(
            zip(heights, widths, strict=True)
        ):
            prediction = predicted_mask(logits[index], height, width)
            scores.update(prediction, masks[index, :height, :width])
    results = scores.result()
    return {"num_examples": results["num_pairs"], **results}
