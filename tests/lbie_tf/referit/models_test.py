"""Tests of the ReferIt models: Hu et al.'s baseline and the section 4.2
model (shapes, spatial map, deconvolution kernel, saving, training, the
text-blind control)."""

import keras
import numpy as np
import pytest

from lbie_tf.core import errors
from lbie_tf.referit import hu_baseline, lbie_model

SIZE = 64
TOKENS = 6
VOCABULARY = 30
SMALL_BACKBONE = {
    "filters_scale": 1 / 16,
    "fc_units": 16,
    "fc8_units": 16,
    "input_scale": 1 / 128,
    "freeze_convolutions": False,
    "vgg16_weights": "none",
}
SMALL_TEXT = {
    "image_size": SIZE,
    "max_tokens": TOKENS,
    "vocabulary_size": VOCABULARY,
    "embedding_dim": 8,
    "lstm_units": 8,
}


def _small_hu(**kwargs):
    arguments = {**SMALL_BACKBONE, **SMALL_TEXT, "mlp_units": 8, "seed": 1}
    return hu_baseline.build_hu_baseline(**{**arguments, **kwargs})


def _small_lbie(**kwargs):
    arguments = {
        **SMALL_BACKBONE,
        **SMALL_TEXT,
        "fusion_units": 8,
        "attention_units": 4,
        "classifier_units": 8,
        "seed": 1,
    }
    return lbie_model.build_lbie_model(**{**arguments, **kwargs})


def _inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, VOCABULARY, (batch, TOKENS))
    # Left padding, as the input pipeline writes it.
    tokens[:, :2] = 0
    return {
        "image": rng.normal(0.0, 60.0, (batch, SIZE, SIZE, 3)).astype(
            "float32"
        ),
        "expression": tokens.astype("int32"),
    }


def _shapes(outputs):
    return {key: tuple(value.shape) for key, value in outputs.items()}


def test_hu_baseline_shapes():
    outputs = _small_hu()(_inputs(), training=False)
    assert _shapes(outputs) == {"logits": (2, SIZE, SIZE, 1)}
    assert outputs["logits"].dtype == "float32"


@pytest.mark.parametrize("termination", ["gumbel", "last"])
def test_lbie_model_shapes(termination):
    outputs = _small_lbie(termination=termination)(_inputs(), training=False)
    expected = {
        "logits": (2, SIZE, SIZE, 1),
        "attention_weights": (2, 4, TOKENS, 3),
    }
    if termination == "gumbel":
        expected["stop_probabilities"] = (2, 2, 2, 3)
        expected["stop_step"] = (2, 2, 2)
    assert _shapes(outputs) == expected
    # Padded words get no attention.
    weights = np.asarray(outputs["attention_weights"])
    np.testing.assert_array_equal(weights[:, :, :2], 0.0)
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "options", [{"feature_layer": "fc7", "spatial_features": True}]
)
def test_lbie_model_feature_options(options):
    model = _small_lbie(**options, attention_form="bilinear", num_steps=1)
    # fc7 (16 channels here) and the 8-channel spatial map.
    kernel = model.get_layer("image_projection").kernel
    assert tuple(kernel.shape) == (1, 1, 16 + 8, 8)
    outputs = model(_inputs(), training=False)
    assert outputs["logits"].shape == (2, SIZE, SIZE, 1)
    assert outputs["attention_weights"].shape == (2, 4, TOKENS, 1)


@pytest.mark.slow
def test_full_size_graphs_at_512():
    full = {"vgg16_weights": "none", "seed": 0}
    hu = hu_baseline.build_hu_baseline(**full)
    assert tuple(hu.output["logits"].shape) == (None, 512, 512, 1)
    assert tuple(hu.get_layer("vgg16").output.shape) == (None, 16, 16, 1000)
    assert tuple(hu.get_layer("features").output.shape) == (
        None,
        16,
        16,
        1000 + 1000 + 8,
    )
    del hu
    lbie = lbie_model.build_lbie_model(**full)
    outputs = lbie.output
    assert tuple(outputs["logits"].shape) == (None, 512, 512, 1)
    assert tuple(outputs["attention_weights"].shape) == (None, 256, 20, 3)
    assert tuple(outputs["stop_step"].shape) == (None, 16, 16)
    fusion = lbie.get_layer("fusion")
    assert (fusion.units, fusion.num_steps, fusion.attention_units) == (
        1024,
        3,
        512,
    )
    assert lbie.get_layer("text_encoder").units == 1024


def _spatial_reference(height, width):
    """Hu et al.'s spatial map, written from their definition."""
    grid = np.zeros((height, width, 8), "float32")
    for h in range(height):
        for w in range(width):
            xmin, xmax = w / width * 2 - 1, (w + 1) / width * 2 - 1
            ymin, ymax = h / height * 2 - 1, (h + 1) / height * 2 - 1
            grid[h, w] = [
                xmin,
                ymin,
                xmax,
                ymax,
                (xmin + xmax) / 2,
                (ymin + ymax) / 2,
                1 / width,
                1 / height,
            ]
    return grid


@pytest.mark.parametrize("height, width", [(16, 16), (3, 5)])
def test_spatial_coordinates_match_hu_et_al(height, width):
    feature_map = np.zeros((2, height, width, 7), "float32")
    grid = np.asarray(hu_baseline.SpatialCoordinates()(feature_map))
    assert grid.shape == (2, height, width, 8)
    np.testing.assert_allclose(
        grid[0], _spatial_reference(height, width), rtol=0.0, atol=1e-6
    )
    np.testing.assert_array_equal(grid[0], grid[1])
    assert grid.min() >= -1.0 and grid.max() <= 1.0


def test_l2_normalization_matches_numpy():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 5)).astype("float32")
    y = np.asarray(hu_baseline.L2Normalization()(x))
    np.testing.assert_allclose(
        y, x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-5
    )
    np.testing.assert_array_equal(
        hu_baseline.L2Normalization()(np.zeros((1, 4), "float32")), 0.0
    )


def _bilinear_reference(variant, stride=32):
    if variant == "hu":
        # Hu et al.: f = [0, 1, ..., s - 1, s, s - 1, ..., 1] / s.
        f = np.concatenate([np.arange(0, stride), np.arange(stride, 0, -1)])
        f = f / stride
    else:
        # FCN: a tent of half-width s centred on s - 0.5.
        f = 1 - np.abs(np.arange(2 * stride) - (stride - 0.5)) / stride
    return np.outer(f, f)


@pytest.mark.parametrize("variant", ["hu", "fcn"])
@pytest.mark.parametrize("build", [_small_hu, _small_lbie])
def test_upsampling_starts_bilinear(variant, build):
    upsampling = build(bilinear_variant=variant).get_layer("upsampling")
    assert upsampling.bias is None and upsampling.kernel.trainable
    kernel = np.asarray(upsampling.kernel)
    assert kernel.shape == (64, 64, 1, 1)
    np.testing.assert_allclose(
        kernel[:, :, 0, 0], _bilinear_reference(variant), atol=1e-7
    )


@pytest.mark.parametrize(
    "build, options",
    [
        (_small_hu, {}),
        (_small_hu, {"text_blind": True}),
        (_small_lbie, {"termination": "gumbel"}),
        (_small_lbie, {"termination": "last", "text_blind": True}),
    ],
)
def test_keras_round_trip(build, options, tmp_path):
    model = build(**options)
    inputs = _inputs()
    outputs = model(inputs, training=False)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    reloaded_outputs = reloaded(inputs, training=False)
    assert set(reloaded_outputs) == set(outputs)
    for key, value in outputs.items():
        np.testing.assert_array_equal(reloaded_outputs[key], value)


@pytest.mark.parametrize(
    "build, options",
    [
        (_small_hu, {}),
        (_small_lbie, {"termination": "last"}),
        # During the gate's warm-up training and inference both keep step
        # T, so the loss before and after the step compares like with like
        # (with Gumbel sampling the trained step is a random draw).
        (
            _small_lbie,
            {
                "termination": "gumbel",
                "termination_warmup_steps": 10,
                "termination_warmup_selection": "last",
            },
        ),
    ],
)
def test_one_fit_step_lowers_the_sigmoid_loss(build, options):
    keras.utils.set_random_seed(0)
    model = build(**options)
    inputs = _inputs(batch=2)
    # A square object in the top-left quadrant.
    masks = np.zeros((2, SIZE, SIZE, 1), "float32")
    masks[:, 8:28, 8:28] = 1.0
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss={"logits": keras.losses.BinaryCrossentropy(from_logits=True)},
        # Tracing the training graph takes longer than this tiny step.
        run_eagerly=True,
    )
    targets = {"logits": masks}
    before = model.evaluate(inputs, targets, verbose=0, return_dict=True)
    model.fit(inputs, targets, batch_size=2, epochs=1, verbose=0)
    after = model.evaluate(inputs, targets, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]


def test_frozen_convolutions_are_not_trained():
    model = _small_hu(freeze_convolutions=True)
    trained = {w.path.split("/")[-2] for w in model.trainable_weights}
    assert not any(name.startswith("conv") for name in trained)
    assert {"fc6", "fc7", "fc8", "mlp_l1", "mlp_l2", "upsampling"} <= trained


@pytest.mark.parametrize("build", [_small_hu, _small_lbie])
def test_text_blind_model_ignores_the_expression(build):
    first, second = _inputs(seed=0), _inputs(seed=0)
    second["expression"] = _inputs(seed=1)["expression"]
    assert not np.array_equal(first["expression"], second["expression"])

    normal = build()
    assert not np.allclose(
        normal(first, training=False)["logits"],
        normal(second, training=False)["logits"],
        rtol=0.0,
        atol=1e-7,
    )
    blind = build(text_blind=True)
    names = {layer.name for layer in blind.layers}
    assert "text_encoder" not in names and "constant_text" in names
    np.testing.assert_array_equal(
        blind(first, training=False)["logits"],
        blind(second, training=False)["logits"],
    )


def test_build_errors():
    with pytest.raises(ValueError, match="multiple of 32"):
        _small_hu(image_size=50)
    with pytest.raises(ValueError, match="termination"):
        _small_lbie(termination="mixture")
    with pytest.raises(ValueError, match="feature_layer"):
        _small_lbie(feature_layer="conv5_3")
    with pytest.raises(errors.UsageError, match="full-size backbone"):
        _small_hu(vgg16_weights="imagenet")
