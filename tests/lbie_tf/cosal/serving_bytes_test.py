"""Tests of the `serving_bytes` signature of a CoSaL export, served by a
process that imports only TensorFlow, and of its one tokenizer rule."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_builders.cosal import vocabulary
from lbie_tf import tasks  # noqa: F401 - registers the cosal task
from lbie_tf.core import export_lib
from lbie_tf.cosal import editing, serving

REPO = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
)
PRETRAINED = os.path.join(REPO, "pretrained", "cosal_paper_t4_attn_d8")

# Runs where no project module can be imported (cwd is a temporary
# directory, PYTHONPATH unset) and Keras is blocked: a server with TensorFlow
# alone. `import tensorflow` itself imports keras.src.optimizers whenever
# Keras is installed (tensorflow/__init__.py), so "keras" would be in
# sys.modules whatever the export needs; a None entry makes every import of
# it fail (and TensorFlow behave as without Keras), so the server must work
# without it. Each request in requests.json is sent in turn; a failing one
# must not stop the next.
_SERVER = r"""
import importlib.util, json, sys
sys.modules["keras"] = sys.modules["tf_keras"] = None
import numpy as np
import tensorflow as tf

for name in ("lbie_tf", "keras_layers", "data_builders", "experiments"):
    assert importlib.util.find_spec(name) is None, name
saved_model, inputs = sys.argv[1:]
requests = json.load(open(inputs + "/requests.json"))
read = lambda name: open(inputs + "/" + name, "rb").read()
loaded = tf.saved_model.load(saved_model)
default = loaded.signatures["serving_default"]
serve = loaded.signatures["serving_bytes"]
report = {
    "signatures": sorted(loaded.signatures),
    "inputs": {
        k: [v.dtype.name, v.shape.as_list()]
        for k, v in serve.structured_input_signature[1].items()
    },
    "outputs": {
        k: [v.dtype.name, v.shape.as_list()]
        for k, v in serve.structured_outputs.items()
    },
    "calls": [],
}
arrays = {}
for index, request in enumerate(requests):
    try:
        outputs = serve(
            image_bytes=tf.constant([read(n) for n in request["images"]]),
            text=tf.constant(request["texts"]),
        )
    except tf.errors.InvalidArgumentError as error:
        report["calls"].append({"error": error.message})
        continue
    report["calls"].append({"error": None})
    arrays[f"{index}_png"] = np.stack(
        [tf.io.decode_png(b).numpy() for b in outputs["png_bytes"]]
    )
    for name in ("labels", "attention_weights"):
        arrays[f"{index}_{name}"] = outputs[name].numpy()
# serving_default on the same pixels, as a client that decodes itself.
decoded = {
    "png": tf.io.decode_png(read("in.png"), channels=3),
    "jpeg": tf.io.decode_jpeg(read("in.jpg"), channels=3),
}
for name, image in decoded.items():
    outputs = default(
        image=image[None], sentences=tf.constant([requests[0]["sentences"]])
    )
    for key, value in outputs.items():
        arrays[f"default_{name}_{key}"] = value.numpy()
report["modules"] = sorted(
    m for m, module in sys.modules.items()
    if module is not None
    and m.split(".")[0] in (
        "keras", "tf_keras", "lbie_tf", "keras_layers", "data_builders"
    )
)
report["keras_blocked"] = sys.modules.get("keras", 0) is None
json.dump(report, open(inputs + "/report.json", "w"))
np.savez(inputs + "/arrays.npz", **arrays)
"""


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _with_png_size(data, width, height):
    """`data` (a PNG) with its IHDR claiming width x height, CRC fixed."""
    fields = bytearray(data[12:29])
    fields[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(fields)))
    return data[:12] + bytes(fields) + crc + data[33:]


def _write_inputs(directory):
    """The example of `experiments.edit --write_example`, in several modes
    and formats, plus bad images; returns the request list."""
    image_path, text_path, _ = editing.write_example(directory)
    with open(text_path) as file:
        sentences = file.read().splitlines()
    with Image.open(image_path) as image:
        rgb = np.asarray(image.convert("RGB"))
    files = {
        "grey.png": _png_bytes(Image.fromarray(rgb[..., 0])),
        "palette.png": _png_bytes(Image.fromarray(rgb).convert("P")),
        # Transparent black background, opaque black shapes: only
        # compositing on white gives back the RGB silhouette.
        "rgba.png": _png_bytes(
            Image.fromarray(
                np.dstack([np.zeros_like(rgb), 255 - rgb[..., :1]]), "RGBA"
            )
        ),
        "narrow.png": _png_bytes(Image.fromarray(rgb[:, 1:])),
        "bomb.png": _with_png_size(open(image_path, "rb").read(), 40000, 40000),
        "corrupt.png": open(image_path, "rb").read()[:120],
        "garbage.png": b"this is not an image",
    }
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, format="JPEG", quality=95)
    files["in.jpg"] = jpeg.getvalue()
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as file:
            file.write(data)
    # The text as one string: '.'-separated with extra white space and a
    # trailing '.', and as text.txt holds it (one sentence a line).
    text = "  " + " .  ".join(sentences) + " ."
    with open(text_path) as file:
        text_file = file.read()
    good = {"images": ["in.png"], "texts": [text], "sentences": sentences}
    requests = [
        good,
        {
            "images": ["in.png", "grey.png", "palette.png", "rgba.png"],
            "texts": [text, text_file, text, text],
        },
        {"images": ["in.jpg"], "texts": [text]},
    ]
    for bad in ("bomb.png", "corrupt.png", "garbage.png", "narrow.png"):
        # A bad image among good ones, then a good request again.
        requests.append({"images": ["in.png", bad], "texts": [text, text]})
        requests.append(good)
    requests.append({"images": ["in.png"], "texts": [". ".join(sentences[:8])]})
    requests.append({"images": ["in.png", "in.png"], "texts": [text]})
    requests.append(good)
    with open(os.path.join(directory, "requests.json"), "w") as file:
        json.dump(requests, file)
    return requests


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_lib.export_model(
        PRETRAINED, tmp_path_factory.mktemp("export") / "cosal"
    )


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """What the TensorFlow-only server answered to every request."""
    inputs = tmp_path_factory.mktemp("requests")
    requests = _write_inputs(str(inputs))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", _SERVER, exported.saved_model_dir, str(inputs)],
        cwd=str(tmp_path_factory.mktemp("server_cwd")),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(inputs / "report.json") as file:
        report = json.load(file)
    arrays = dict(np.load(inputs / "arrays.npz"))
    return requests, report, arrays


def test_the_export_names_both_signatures(exported):
    with open(exported.task_path) as file:
        signatures = json.load(file)["signatures"]
    assert signatures == {
        "serving_default": ["image", "sentences"],
        "serving_bytes": ["image_bytes", "text"],
    }


def test_server_imports_only_tensorflow(served):
    _, report, _ = served
    assert report["modules"] == []
    assert report["keras_blocked"]
    assert report["signatures"] == ["serving_bytes", "serving_default"]


def test_serving_bytes_signature(served):
    _, report, _ = served
    assert report["inputs"] == {
        "image_bytes": ["string", [None]],
        "text": ["string", [None]],
    }
    assert report["outputs"] == {
        "png_bytes": ["string", [None]],
        "labels": ["uint8", [None, 48, 48]],
        "attention_weights": ["float32", [None, 36, 9, 4]],
    }


def test_png_bytes_is_the_colored_image_of_serving_default(served):
    _, report, arrays = served
    assert report["calls"][0] == {"error": None}
    np.testing.assert_array_equal(
        arrays["0_png"], arrays["default_png_colored_image"]
    )
    np.testing.assert_array_equal(
        arrays["0_labels"], arrays["default_png_labels"]
    )
    np.testing.assert_array_equal(
        arrays["0_attention_weights"], arrays["default_png_attention_weights"]
    )


def test_grey_palette_and_rgba_images_and_text_file_layout_agree(served):
    _, report, arrays = served
    assert report["calls"][1] == {"error": None}
    for index in range(4):
        np.testing.assert_array_equal(
            arrays["1_png"][index], arrays["0_png"][0]
        )
        np.testing.assert_array_equal(
            arrays["1_labels"][index], arrays["0_labels"][0]
        )


def test_a_jpeg_image_is_served(served):
    _, report, arrays = served
    assert report["calls"][2] == {"error": None}
    np.testing.assert_array_equal(
        arrays["2_png"], arrays["default_jpeg_colored_image"]
    )


@pytest.mark.parametrize(
    "position, fragments",
    [
        (
            3,
            [
                "image_bytes[1]: image is 40000x40000 = 1600000000 pixels",
                "limit of 40000000 pixels (MAX_IMAGE_PIXELS)",
                "refused before decoding",
            ],
        ),
        (5, ["Invalid PNG data"]),
        (7, ["image_bytes[1] is neither a PNG nor a JPEG file"]),
        (9, ["image_bytes[1]: image is 47x48 pixels; expected 48x48"]),
        (11, ["exactly 9 sentences"]),
        (12, ["image_bytes and text must hold one entry per request"]),
    ],
    ids=["bomb", "corrupt", "garbage", "narrow", "eight sentences", "batch"],
)
def test_a_bad_request_fails_alone_and_the_server_keeps_serving(
    served, position, fragments
):
    requests, report, arrays = served
    error = report["calls"][position]["error"]
    assert error is not None
    for fragment in fragments:
        assert fragment in error
    # The next good request is answered as the first one was.
    following = requests.index(requests[0], position + 1)
    assert report["calls"][following] == {"error": None}
    np.testing.assert_array_equal(arrays[f"{following}_png"], arrays["0_png"])


# One tokenizer rule: the graph splits and tokenises as the Python parser.

_SENTENCES = [
    "circle is red",
    "blue below circle",
    "diamond is grey",
    "rectangle is black",
    "triangle is yellow",
    "thin ellipse is blue",
    "half fat ellipse is light green",
    "red left fat ellipse",
    "reverse triangle is red",
]
_GOOD = ". ".join(_SENTENCES)
TEXTS = {
    "dots": _GOOD,
    "trailing dot": _GOOD + ".",
    "trailing dot and space": _GOOD + " . ",
    "lines": "\n".join(_SENTENCES) + "\n",
    "windows lines": "\r\n".join(_SENTENCES),
    "semicolons": "; ".join(_SENTENCES) + ";",
    "runs of separators": "  " + " ..; \n ".join(_SENTENCES) + " .;",
    "extra white space": _GOOD.replace(" ", "  \t "),
    "unicode white space": _GOOD.replace(" ", "\u00a0\u2003"),
    "upper case": _GOOD.upper(),
    "spaced multi-word": _GOOD.replace("light green", "light \n green"),
    "edge punctuation": "! " + _GOOD.replace("is red", "is red ,") + " !",
    "eight sentences": ". ".join(_SENTENCES[:8]),
    "ten sentences": ". ".join(_SENTENCES + _SENTENCES[:1]),
    "empty": "",
    "separators only": " . ; \n ",
    "unknown word": _GOOD.replace("diamond", "square"),
    "glued words": _GOOD.replace("circle is", "circleis"),
    "underscore token": _GOOD.replace("half fat ellipse", "half_fat_ellipse"),
    "two tokens": _GOOD.replace("circle is red", "circle red"),
    "four tokens": _GOOD.replace("circle is red", "circle is is red"),
    "inner comma": _GOOD.replace("circle is", "circle, is"),
    "punctuation after space": ", , " + _GOOD,
    "mixed edge punctuation": _GOOD + " ! ,",
    "trailing comma": _GOOD.replace("is red", "is red,"),
}


@pytest.fixture(scope="module")
def graph_parser():
    server = serving._Serving(tf, keras.Model())
    return tf.function(
        lambda text: server.tokenize(server.split_text(text)),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )


@pytest.mark.parametrize("name", list(TEXTS))
def test_graph_and_python_parse_texts_alike(graph_parser, name):
    text = TEXTS[name]
    try:
        expected = np.asarray(vocabulary.text_to_sentence_ids(text))
    except ValueError:
        expected = None
    try:
        ids = graph_parser(tf.constant([text])).numpy()[0]
    except tf.errors.InvalidArgumentError:
        ids = None
    if expected is None:
        assert ids is None, f"the graph accepts {text!r}, Python does not"
    else:
        assert ids is not None, f"Python accepts {text!r}, the graph does not"
        np.testing.assert_array_equal(ids, expected)


def test_graph_parses_a_batch_of_texts(graph_parser):
    texts = [TEXTS["dots"], TEXTS["lines"], TEXTS["upper case"]]
    ids = graph_parser(tf.constant(texts)).numpy()
    expected = vocabulary.text_to_sentence_ids(TEXTS["dots"])
    np.testing.assert_array_equal(ids, np.stack([expected] * 3))


def test_graph_errors_name_the_problem(graph_parser):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        graph_parser(tf.constant([TEXTS["eight sentences"]]))
    assert "exactly 9 sentences" in info.value.message
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        graph_parser(tf.constant([TEXTS["underscore token"]]))
    assert "Unknown CoSaL word" in info.value.message
    assert "half_fat_ellipse" in info.value.message
