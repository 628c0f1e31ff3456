"""Tests of the flowers text-conditioned PatchGAN discriminator."""

import keras
import numpy as np
import pytest

from lbie_tf.flowers import discriminator, generator

SIZES = {
    "vocabulary_size": 10,
    "max_tokens": 5,
    "filters": 2,
    "embedding_dim": 6,
    "lstm_units": 3,
    "attention_units": 4,
    "seed": 1,
}


def _inputs(batch=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "lightness": rng.uniform(-1, 1, (batch, size, size, 1)).astype(
            "float32"
        ),
        "ab": rng.uniform(-1, 1, (batch, size, size, 2)).astype("float32"),
        "tokens": np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0]], "int32")[:batch],
    }


def _build(**overrides):
    return discriminator.build_discriminator(**{**SIZES, **overrides})


def test_released_patch_grid_at_256():
    assert discriminator.patch_grid_size(256) == 29
    model = _build(image_size=256)
    assert model.output.shape == (None, 29, 29, 1)
    logits = model(_inputs(batch=1, size=256), training=False)
    assert logits.shape == (1, 29, 29, 1)


@pytest.mark.parametrize("size, grid", [(32, 1), (64, 5), (48, 3)])
def test_patch_grid(size, grid):
    assert discriminator.patch_grid_size(size) == grid
    model = _build()
    assert model(_inputs(size=size)).shape == (2, grid, grid, 1)


def test_released_layout():
    model = _build(filters=64, image_size=256, attention_units=128)
    convolutions = [model.get_layer(f"conv{index}") for index in (1, 2, 3, 4)]
    assert [layer.filters for layer in convolutions] == [64, 128, 256, 512]
    assert [layer.strides for layer in convolutions] == [(2, 2)] * 3 + [(1, 1)]
    assert all(layer.kernel_size == (4, 4) for layer in convolutions)
    relu = model.get_layer("conv1_leaky_relu")
    assert relu.negative_slope == pytest.approx(0.2)
    fusion = model.get_layer("fusion")
    assert fusion.units == 512 and fusion.attention_form == "additive"
    assert fusion.attention_units == 128
    # Logits: the sigmoid lives in the loss.
    assert model.get_layer("logits").activation is keras.activations.linear


def test_logits_are_unbounded_and_depend_on_text_and_colour():
    model = _build()
    inputs = _inputs(size=64)
    logits = np.asarray(model(inputs))
    other_text = dict(inputs, tokens=inputs["tokens"][::-1].copy())
    other_colour = dict(inputs, ab=-inputs["ab"])
    assert not np.allclose(logits, model(other_text))
    assert not np.allclose(logits, model(other_colour))


def test_padding_changes_nothing():
    model = _build(max_tokens=None)
    inputs = _inputs(size=64)
    padded = dict(
        inputs,
        tokens=np.concatenate(
            [inputs["tokens"], np.zeros((2, 2), "int32")], axis=1
        ),
    )
    np.testing.assert_allclose(model(inputs), model(padded), atol=1e-6)


def test_no_text_ignores_the_tokens():
    model = _build(text=False)
    assert set(model.input) == {"lightness", "ab", "tokens"}
    assert model.name == "flowers_discriminator_no_text"
    inputs = _inputs(size=64)
    other = dict(inputs, tokens=np.full_like(inputs["tokens"], 9))
    np.testing.assert_array_equal(model(inputs), model(other))


def test_text_weights_are_its_own():
    kwargs = {k: v for k, v in SIZES.items() if k != "filters"}
    colorizer = generator.build_generator(ngf=2, **kwargs)
    critic = _build()
    ours = critic.get_layer("text_encoder").embedding_layer.embeddings
    theirs = colorizer.get_layer("text_encoder").embedding_layer.embeddings
    # Same seed, different initial values and different variables.
    assert not np.allclose(ours.numpy(), theirs.numpy())
    assert {id(v) for v in critic.weights}.isdisjoint(
        id(v) for v in colorizer.weights
    )


def test_bilinear_attention():
    model = _build(attention_form="bilinear")
    fusion = model.get_layer("fusion")
    assert fusion.attention_form == "bilinear"
    assert fusion.attention_units is None


@pytest.mark.parametrize(
    "overrides",
    [{}, {"text": False}, {"attention_form": "bilinear"}],
    ids=["text", "no_text", "bilinear"],
)
def test_save_and_reload(tmp_path, overrides):
    model = _build(**overrides)
    inputs = _inputs()
    path = str(tmp_path / "discriminator.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(inputs), model(inputs), atol=1e-6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 24}, "image_size"),
        ({"filters": 0}, "filters"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"lstm_units": 0}, "lstm_units"),
        ({"attention_form": "dot"}, "attention_form"),
    ],
)
def test_rejects_bad_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        _build(**overrides)
