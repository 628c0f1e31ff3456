"""Colours a photograph as a caption says, with a trained or exported
flowers model, at the photograph's own size.

The text, image and output paths are checked before TensorFlow is
imported, so bad input fails at once; TensorFlow is imported only to run
the model.
"""

import io
import os

import numpy as np
from PIL import Image

from lbie_tf.core import artifacts, errors, images
from lbie_tf.flowers import figure7, input_pipeline

_ACCEPTED = "expected a photograph (PNG or JPEG, any size and mode)"
# The example photograph: a synthetic flower of this class (red petals).
EXAMPLE_CLASS = 1
EXAMPLE_SIZE = 96


def check_text(text):
    """Raises TextError for a caption without a single word (letters or
    digits), which the graph tokenizer refuses too. A caption of unknown
    words only is kept: they read as <unk> and the model colours as for an
    uninformative caption (a result, not an error); a very long caption is
    read up to the config's `data.max_tokens` words."""
    if not isinstance(text, str) or not input_pipeline.caption_words(text):
        raise errors.TextError(
            "the caption has no word (letters or digits); describe the "
            'colours, e.g. "this flower has red petals"'
        )
    return text


def panels_path(out_path):
    """Where the side-by-side picture of `out_path` goes: <out>_panels.png."""
    root, _ = os.path.splitext(os.fspath(out_path))
    return root + "_panels.png"


def _serving_function(model_path):
    """serving_default of an export, or the same function built from a
    training workdir (its config names the data holding the vocabulary)."""
    from lbie_tf.core import evaluate_lib, export_lib, runtime

    tf, _ = runtime.import_tensorflow_quietly()
    path = os.fspath(model_path)
    saved_model = os.path.join(path, export_lib.SAVED_MODEL_DIR_NAME)
    if os.path.isdir(saved_model):
        signature = tf.saved_model.load(saved_model).signatures[
            "serving_default"
        ]
        return lambda image, text: signature(
            image=tf.constant(image), caption=tf.constant(text)
        )["colorized"].numpy()
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    if not os.path.isfile(os.path.join(directory, artifacts.CONFIG_FILE_NAME)):
        raise errors.ModelFileError(
            f"{path!r} is neither a flowers export (with "
            f"{export_lib.SAVED_MODEL_DIR_NAME}/) nor a training workdir "
            f"(with {artifacts.CONFIG_FILE_NAME}); a bare .keras file lacks "
            "the vocabulary, so export it first."
        )
    task = evaluate_lib.task_of_config(artifacts.read_run_config(directory))
    model = task.load_model(path)
    endpoint = task.build_serving(model)[0][0]
    return lambda image, text: endpoint.function(
        tf.constant(image), tf.constant(text)
    )["colorized"].numpy()


def side_by_side(*pictures, gap=4):
    """uint8 [H, W, 3] pictures of one height in a row, white between."""
    height = pictures[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    row = []
    for picture in pictures:
        row.extend([picture, spacer])
    return np.concatenate(row[:-1], axis=1)


def colorizer(model_path):
    """`colorize(rgb_uint8 [H, W, 3], caption) -> rgb_uint8 [H, W, 3]` of an
    export or training workdir (what `figure7.run_figure7` takes)."""
    run = _serving_function(model_path)
    return lambda photo, caption: run(
        photo[None], np.array([caption.encode("utf-8")])
    )[0]


def edit(model_path, image_path, text, out_path):
    """Writes the coloured photograph (its size) to `out_path` and the grey
    input | coloured | original picture to `panels_path(out_path)`;
    returns lines for a person."""
    check_text(text)
    photo = images.read_image_file(image_path, _ACCEPTED)
    artifacts.check_output_path(out_path, "--out", suffix=None)
    colorized = colorizer(model_path)(photo, text)
    images.write_png(out_path, colorized)
    picture = images.write_png(
        panels_path(out_path),
        side_by_side(figure7.luminance_grey(photo), colorized, photo),
    )
    return [
        f"coloured: {os.path.abspath(out_path)} ({photo.shape[1]}x"
        f"{photo.shape[0]})",
        f"panels:   {os.path.abspath(picture)} (grey input | coloured | "
        "original)",
    ]


def example():
    """A synthetic flower photograph (uint8 RGB) and a caption naming its
    petal colour."""
    # Imported here: the package registers its TFDS builder, which imports
    # TensorFlow.
    from data_builders.oxford_flowers_captions import synthetic

    rng = np.random.default_rng([0, EXAMPLE_CLASS])
    photo = synthetic.draw_flower(
        rng, EXAMPLE_CLASS, EXAMPLE_SIZE, EXAMPLE_SIZE
    )
    color = synthetic.petal_color(EXAMPLE_CLASS)
    return np.asarray(photo), f"this flower has {color} petals"


def serving_examples():
    """One valid request per signature, from `example`."""
    photo, text = example()
    png = io.BytesIO()
    Image.fromarray(photo).save(png, format="PNG")
    return {
        "serving_default": {
            "image": photo[None],
            "caption": np.array([text.encode()]),
        },
        "serving_bytes": {
            "image_bytes": np.array([png.getvalue()]),
            "text": np.array([text.encode()]),
        },
    }


def write_example(directory):
    """Writes in.png and text.txt of `example` into `directory`; returns
    (image path, text)."""
    os.makedirs(directory, exist_ok=True)
    photo, text = example()
    image_path = images.write_png(os.path.join(directory, "in.png"), photo)
    artifacts.write_text(os.path.join(directory, "text.txt"), text + "\n")
    return image_path, text
