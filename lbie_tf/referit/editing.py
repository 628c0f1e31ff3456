"""Segments what a referring expression names in a photograph, with a
trained or exported ReferIt model.

The text, image and output paths are checked before TensorFlow is
imported, so bad input fails at once; TensorFlow is imported only to run
the model.
"""

import io
import os

import numpy as np
from PIL import Image

from lbie_tf.core import artifacts, errors, images

_ACCEPTED = "expected a photograph (PNG or JPEG, any size and mode)"
# The same words as input_pipeline.tokenize's error.
_EMPTY_TEXT = (
    "the referring expression is empty or only white space; it must name "
    "the object to segment"
)


def check_text(text):
    """Raises TextError for a text `input_pipeline.tokenize` refuses (empty
    or only white space, by str.strip as there). A very long text is kept:
    the model reads its first 20 tokens; words it does not know become
    <unk>, so a text of unknown words only gives a mask from 20 <unk> ids
    (left-padded), a result and not an error."""
    if not isinstance(text, str) or not text.strip():
        raise errors.TextError(_EMPTY_TEXT)
    return text


def read_photo(path):
    """A photograph as uint8 RGB [H, W, 3]: grey, palette, 16-bit and
    alpha images are converted (`core.images.to_rgb`; alpha over white).
    Its size is read from the header first: above core MAX_IMAGE_PIXELS it
    is refused before any pixel is decoded.

    Raises:
      ImageError: missing, not an image, damaged or too large.
    """
    return images.read_image_file(path, _ACCEPTED)


def overlay_path(out_path):
    """Where the overlay picture of `out_path` goes: <out>_overlay.png."""
    root, _ = os.path.splitext(os.fspath(out_path))
    return root + "_overlay.png"


def _serving_function(model_path):
    """serving_default of an export, or the same function built from a
    training workdir (its config names the data holding the vocabulary)."""
    from lbie_tf.core import export_lib, runtime

    tf, _ = runtime.import_tensorflow_quietly()
    path = os.fspath(model_path)
    saved_model = os.path.join(path, export_lib.SAVED_MODEL_DIR_NAME)
    if os.path.isdir(saved_model):
        signature = tf.saved_model.load(saved_model).signatures[
            "serving_default"
        ]
        return lambda image, text: signature(
            image=tf.constant(image), expression=tf.constant(text)
        )["mask"].numpy()
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    if not os.path.isfile(os.path.join(directory, artifacts.CONFIG_FILE_NAME)):
        raise errors.ModelFileError(
            f"{path!r} is neither a ReferIt export (with "
            f"{export_lib.SAVED_MODEL_DIR_NAME}/) nor a training workdir "
            f"(with {artifacts.CONFIG_FILE_NAME}); a bare .keras file lacks "
            "the vocabulary, so export it first."
        )
    from lbie_tf.core import evaluate_lib

    task = evaluate_lib.task_of_config(artifacts.read_run_config(directory))
    model = task.load_model(path)
    endpoint = task.build_serving(model)[0][0]
    return lambda image, text: endpoint.function(
        tf.constant(image), tf.constant(text)
    )["mask"].numpy()


def edit(model_path, image_path, text, out_path):
    """Writes the mask (0 / 255, the photo's size) to `out_path` and the
    overlay picture to `overlay_path(out_path)`; returns lines for a
    person."""
    from lbie_tf.referit import summaries

    check_text(text)
    photo = read_photo(image_path)
    artifacts.check_output_path(out_path, "--out", suffix=None)
    run = _serving_function(model_path)
    mask = run(photo[None], np.array([text.encode("utf-8")]))[0] > 0
    images.write_png(out_path, mask.astype(np.uint8) * 255)
    picture_path = images.write_png(
        overlay_path(out_path), summaries.overlay(photo, mask)
    )
    return [
        f"mask:    {os.path.abspath(out_path)} ({mask.shape[1]}x"
        f"{mask.shape[0]}, {int(mask.sum())} object pixels)",
        f"overlay: {os.path.abspath(picture_path)}",
    ]


def example(index=0, seed=0):
    """A synthetic photograph (RGB), an expression naming one of its
    objects and that object's mask (bool)."""
    # Imported here: the package registers its TFDS builder, which imports
    # TensorFlow.
    from data_builders.referit import synthetic

    for offset in range(100):
        rng = np.random.default_rng([seed, 7_777, index + offset])
        image, objects, segmentations = synthetic.draw_image(rng)
        image = image.convert("RGB")
        for target in range(len(objects)):
            expressions = synthetic.describe(
                rng, objects, target, *image.size, use_color=True
            )
            if expressions:
                return (
                    np.asarray(image),
                    expressions[0],
                    segmentations[target] == 0,
                )
    raise AssertionError("no describable synthetic object")  # unreachable


def serving_examples():
    """One valid request per signature, from `example`."""
    photo, text, _ = example()
    png = io.BytesIO()
    Image.fromarray(photo).save(png, format="PNG")
    return {
        "serving_default": {
            "image": photo[None],
            "expression": np.array([text.encode()]),
        },
        "serving_bytes": {
            "image_bytes": np.array([png.getvalue()]),
            "text": np.array([text.encode()]),
        },
    }


def write_example(directory, index=0):
    """Writes in.png, text.txt and target.png (the true mask) of `example`
    into `directory`; returns (image path, text, target path)."""
    os.makedirs(directory, exist_ok=True)
    photo, text, mask = example(index)
    image_path = images.write_png(os.path.join(directory, "in.png"), photo)
    target_path = images.write_png(
        os.path.join(directory, "target.png"), mask.astype(np.uint8) * 255
    )
    artifacts.write_text(os.path.join(directory, "text.txt"), text + "\n")
    return image_path, text, target_path
