"""Tests of edit_lib: input checks, colouring, atomic writes, editing."""

import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from data_builders.cosal import vocabulary
from lbie_tf.core import artifacts, errors, images
from lbie_tf.cosal import editing

TEXT = (
    "circle is red. Rectangle is  BLUE. half fat ellipse is light green. "
    "diamond is yellow; triangle is grey\nthin ellipse is black. "
    "red below circle. blue left diamond. grey above half thin ellipse."
)
TOKENS = vocabulary.TOKENS


def _expected_ids():
    rows = [
        ("circle", "is", "red"),
        ("rectangle", "is", "blue"),
        ("half fat ellipse", "is", "light green"),
        ("diamond", "is", "yellow"),
        ("triangle", "is", "grey"),
        ("thin ellipse", "is", "black"),
        ("red", "below", "circle"),
        ("blue", "left", "diamond"),
        ("grey", "above", "half thin ellipse"),
    ]
    return np.array([[TOKENS.index(t) for t in row] for row in rows])


def _silhouette(size=48):
    pixels = np.full((size, size, 3), 255, np.uint8)
    pixels[4:12, 4:12] = 0
    pixels[20:28, 30:40] = 0
    return pixels


def _save(path, pixels):
    Image.fromarray(pixels).save(path)
    return str(path)


# Text.


def test_parse_description_gives_ids_and_normalised_sentences():
    ids, sentences = editing.parse_description(TEXT)
    assert ids.dtype == np.int32 and ids.shape == (9, 3)
    np.testing.assert_array_equal(ids, _expected_ids())
    assert sentences[1] == "rectangle is blue"
    assert sentences[8] == "grey above half thin ellipse"


@pytest.mark.parametrize(
    "text, fragments",
    [
        (TEXT.replace("diamond is yellow", "diamond is purple"), ["purple"]),
        (TEXT.replace("red below circle. ", ""), ["exactly 9", "got 8"]),
        (TEXT + " red left circle.", ["exactly 9", "got 10"]),
        (
            TEXT.replace("circle is red", "circle is red red"),
            ["exactly 3 tokens", "has 4"],
        ),
        (TEXT.replace("circle is red", "circle red"), ["has 2"]),
        ("", ["got 0"]),
    ],
)
def test_parse_description_rejects_bad_text(text, fragments):
    with pytest.raises(errors.TextError) as info:
        editing.parse_description(text)
    for fragment in fragments:
        assert fragment in str(info.value)


# Images.


def test_read_silhouette_image_returns_the_pixels(tmp_path):
    pixels = _silhouette()
    path = _save(tmp_path / "in.png", pixels)
    np.testing.assert_array_equal(editing.read_silhouette_image(path), pixels)


def _other_modes(tmp_path):
    rgb = _silhouette()
    grey = rgb[..., 0]
    paths = {
        "RGBA": _save(
            tmp_path / "rgba.png", np.dstack([rgb, np.full_like(grey, 255)])
        ),
        "L": _save(tmp_path / "grey.png", grey),
        "I;16": _save(tmp_path / "grey16.png", grey.astype(np.uint16) * 257),
        "1": str(tmp_path / "bits.png"),
        "P": str(tmp_path / "palette.png"),
    }
    Image.fromarray(grey).convert("1").save(paths["1"])
    Image.fromarray(rgb).convert("P").save(paths["P"])
    return rgb, paths


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "1", "P"])
def test_read_silhouette_image_converts_other_modes(tmp_path, mode):
    rgb, paths = _other_modes(tmp_path)
    assert Image.open(paths[mode]).mode == mode
    np.testing.assert_array_equal(
        editing.read_silhouette_image(paths[mode]), rgb
    )


@pytest.mark.parametrize("size", [(32, 32), (96, 96), (48, 47)])
def test_read_silhouette_image_rejects_other_sizes(tmp_path, size):
    path = _save(tmp_path / "in.png", np.zeros((size[1], size[0], 3), np.uint8))
    with pytest.raises(errors.ImageError) as info:
        editing.read_silhouette_image(path)
    assert f"is {size[0]}x{size[1]} pixels" in str(info.value)
    assert "48x48" in str(info.value)


def test_read_silhouette_image_takes_the_model_size(tmp_path):
    path = _save(tmp_path / "in.png", _silhouette(96))
    assert editing.read_silhouette_image(path, 96).shape == (96, 96, 3)


def test_read_silhouette_image_rejects_non_images(tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("circle is red")
    with pytest.raises(errors.ImageError, match="not an image"):
        editing.read_silhouette_image(str(text_file))
    with pytest.raises(errors.ImageError, match="not found"):
        editing.read_silhouette_image(str(tmp_path / "missing.png"))
    with pytest.raises(errors.ImageError, match="not found"):
        editing.read_silhouette_image(str(tmp_path))


def test_read_silhouette_image_rejects_a_truncated_png(tmp_path):
    full = tmp_path / "full.png"
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3))
    _save(full, noise.astype(np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:-2000])
    with pytest.raises(errors.ImageError, match="damaged"):
        editing.read_silhouette_image(str(cut))


# Model paths.


def _fake_keras_archive(path, config=None, members=("config.json",)):
    """A zip laid out like a .keras file (no weights: only inspected)."""
    if config is None:
        config = {
            "class_name": "Functional",
            "config": {
                "layers": [
                    {
                        "class_name": "InputLayer",
                        "config": {
                            "name": "image",
                            "batch_shape": [None, 96, 96, 3],
                        },
                    }
                ],
                "output_layers": {
                    "logits": ["a", 0, 0],
                    "attention_weights": ["b", 0, 0],
                },
            },
        }
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, json.dumps(config))
    return str(path)


def test_resolve_model_path_accepts_file_workdir_and_export(tmp_path):
    keras_file = _fake_keras_archive(tmp_path / "a.keras")
    assert artifacts.resolve_model_path(keras_file) == keras_file
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    inside = _fake_keras_archive(workdir / "model.keras")
    assert artifacts.resolve_model_path(str(workdir)) == inside


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("missing.keras", "model not found"),
        ("empty_dir", "has no model.keras"),
        ("weights.h5", "not a .keras file"),
    ],
)
def test_resolve_model_path_rejects(tmp_path, name, fragment):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(errors.ModelFileError) as info:
        artifacts.resolve_model_path(str(tmp_path / name))
    assert fragment in str(info.value)
    assert ".keras file, a training workdir or an export" in str(info.value)


def test_inspect_model_file_reads_size_and_outputs(tmp_path):
    info = editing.inspect_model_file(_fake_keras_archive(tmp_path / "m.keras"))
    assert info.image_size == 96
    assert info.output_names == ("attention_weights", "logits")


def test_inspect_model_file_without_an_image_input(tmp_path):
    path = _fake_keras_archive(tmp_path / "m.keras", config={"config": {}})
    assert editing.inspect_model_file(path).image_size is None


@pytest.mark.parametrize(
    "damage", ["garbage", "truncated", "no_config", "json"]
)
def test_inspect_model_file_rejects_corrupt_files(tmp_path, damage):
    path = tmp_path / "m.keras"
    if damage == "garbage":
        path.write_bytes(b"this is not a zip archive at all")
    elif damage == "truncated":
        _fake_keras_archive(tmp_path / "full.keras")
        data = (tmp_path / "full.keras").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "no_config":
        _fake_keras_archive(path, members=("metadata.json",))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{not json")
    with pytest.raises(errors.ModelFileError) as info:
        editing.inspect_model_file(str(path))
    assert "corrupt model file" in str(info.value)
    assert "keras.Model.save" in str(info.value)


# Colouring, scaling, writing.


def test_colorize_labels_matches_a_per_pixel_reference():
    labels = np.random.default_rng(0).integers(0, 7, size=(2, 5, 6))
    colored = editing.colorize_labels(labels)
    assert colored.dtype == np.uint8 and colored.shape == (2, 5, 6, 3)
    for index in np.ndindex(labels.shape):
        label = labels[index]
        want = (
            (255, 255, 255) if label == 0 else vocabulary.COLOR_RGB[label - 1]
        )
        assert tuple(colored[index]) == want


def test_colorize_labels_rejects_labels_outside_the_palette():
    with pytest.raises(ValueError, match="0..6"):
        editing.colorize_labels(np.array([[7]]))
    with pytest.raises(ValueError, match="0..2"):
        editing.colorize_labels(np.array([[3]]), palette=((1, 2, 3),) * 2)


def test_upscale_is_nearest_neighbour():
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    big = images.upscale(pixels, 4)
    assert big.shape == (8, 12, 3)
    for i, j in np.ndindex(8, 12):
        np.testing.assert_array_equal(big[i, j], pixels[i // 4, j // 4])


@pytest.mark.parametrize("scale", [0, 65, 2.0, True, "2"])
def test_upscale_rejects_bad_scales(scale):
    with pytest.raises(ValueError, match="scale must be an integer in 1..64"):
        images.upscale(np.zeros((2, 2, 3)), scale)


def test_write_png_atomically_writes_and_replaces(tmp_path):
    path = str(tmp_path / "out.png")
    first = _silhouette()
    images.write_png(path, first)
    second = 255 - first
    images.write_png(path, second)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), second)
    assert os.listdir(tmp_path) == ["out.png"]


def test_write_png_atomically_leaves_nothing_on_failure(tmp_path):
    path = str(tmp_path / "out.png")
    images.write_png(path, _silhouette())
    before = open(path, "rb").read()
    with pytest.raises(TypeError):
        # Pillow cannot write a 4-D array: the old file must survive intact.
        images.write_png(path, np.zeros((2, 2, 2, 2), np.uint8))
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("out.jpg", "must name a .png file"),
        ("missing_dir/out.png", "does not exist"),
        ("a_dir.png", "is a directory"),
    ],
)
def test_check_output_path_rejects(tmp_path, name, fragment):
    (tmp_path / "a_dir.png").mkdir()
    with pytest.raises(errors.OutputError) as info:
        artifacts.check_output_path(str(tmp_path / name), "--out")
    assert fragment in str(info.value) and "--out=" in str(info.value)


def test_cell_colors_votes_over_silhouette_pixels():
    silhouette = np.full((48, 48, 3), 255, np.uint8)
    labels = np.zeros((48, 48), np.uint8)
    silhouette[2:10, 2:10] = 0  # cell 0
    labels[2:10, 2:10] = 3  # red
    labels[2:4, 2:10] = 1  # a minority of blue
    silhouette[40:44, 20:28] = 0  # cell 7
    labels[40:44, 20:28] = 6  # yellow
    labels[20:28, 20:28] = 2  # cell 4 has labels but no silhouette
    names = editing.cell_colors(silhouette, labels)
    assert names == ("red", "-", "-", "-", "-", "-", "-", "yellow", "-")


def test_write_example_writes_a_usable_input(tmp_path):
    image_path, text_path, target_path = editing.write_example(
        tmp_path / "example", num_direct=6, index=3
    )
    image = editing.read_silhouette_image(image_path)
    # Black shapes on white: only those two values.
    assert set(np.unique(image)) <= {0, 255} and (image == 0).any()
    ids, _ = editing.parse_description(open(text_path).read())
    assert ids.shape == (9, 3)
    # The first six sentences are direct ("<shape> is <colour>").
    assert (ids[:6, 1] == TOKENS.index("is")).all()
    target = np.asarray(Image.open(target_path))
    shape_pixels = image.max(axis=-1) == 0
    assert (target[~shape_pixels] == 255).all()


def test_write_example_rejects_a_bad_num_direct(tmp_path):
    with pytest.raises(errors.UsageError, match="num_direct"):
        editing.write_example(tmp_path, num_direct=12)


# Running a model.


@pytest.mark.parametrize(
    "cell, stop_shape",
    [
        ("paper_t4_attn_d8", (6, 6)),
        ("original_t4_attn_d8", (48, 48)),
        ("paper_t1_attn_d8", None),
    ],
)
def test_run_model_reports_the_step_each_region_kept(cell, stop_shape):
    import keras

    from experiments.configs import cosal
    from lbie_tf.cosal import models

    keras.utils.set_random_seed(0)
    model = models.build_cosal_model(cosal.get_config(cell).model)
    result = editing.run_model(model, _silhouette(), _expected_ids())
    assert result.labels.shape == (48, 48)
    if stop_shape is None:
        assert result.stop_steps is None
        return
    assert result.stop_steps.shape == stop_shape
    assert result.stop_steps.dtype == np.int64
    assert 0 <= result.stop_steps.min() <= result.stop_steps.max() < 4
    if cell.startswith("paper"):
        assert model.get_layer("fusion").termination_gate.threshold == 0.5
