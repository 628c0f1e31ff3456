"""Tests of the flowers generator (paper section 4.3, the released model)."""

import keras
import numpy as np
import pytest

from lbie_tf.flowers import generator
from tests.layer_checklist import run_layer_checklist

SIZES = {
    "vocabulary_size": 10,
    "max_tokens": 5,
    "ngf": 4,
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
        "tokens": np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0]] * (batch // 2))
        .astype("int32")
        .reshape(batch, 5),
    }


def _build(**overrides):
    return generator.build_generator(**{**SIZES, **overrides})


@pytest.fixture(scope="module")
def model():
    return _build()


def test_outputs_shapes_and_tanh_range(model):
    outputs = model(_inputs(), training=False)
    assert set(outputs) == {"ab", "attention_weights"}
    assert outputs["ab"].shape == (2, 32, 32, 2)
    ab = np.asarray(outputs["ab"])
    assert ab.min() > -1.0 and ab.max() < 1.0
    # One step over the 8 x 8 regions of the stride-4 map.
    weights = np.asarray(outputs["attention_weights"])
    assert weights.shape == (2, 64, 5, 1)
    # Softmax over the real words; padding gets exactly 0.
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, rtol=1e-5)
    assert np.all(weights[0, :, 3:] == 0.0) and np.all(weights[1, :, 4] == 0)


def test_released_encoder_layout(model):
    convolutions = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
        and layer.name.startswith("conv")
    ]
    assert len(convolutions) == 16
    assert all(layer.kernel_size == (3, 3) for layer in convolutions)
    ngf = SIZES["ngf"]
    assert [layer.filters for layer in convolutions] == (
        [ngf, ngf, 2 * ngf, 2 * ngf] + [4 * ngf] * 12
    )
    strided = [layer.name for layer in convolutions if layer.strides != (1, 1)]
    assert strided == ["conv1_2", "conv2_2"]
    atrous = [
        layer.name for layer in convolutions if layer.dilation_rate == (2, 2)
    ]
    assert atrous == [f"conv{b}_{i}" for b in (4, 5) for i in (1, 2, 3)]
    # ReLU then batch norm after every convolution of the encoder.
    encoder = keras.Model(model.input, model.get_layer("conv6_3_bn").output)
    assert encoder(_inputs()).shape == (2, 8, 8, 4 * ngf)
    assert isinstance(
        model.get_layer("conv1_1_bn"), generator.BatchStatisticsNormalization
    )
    fusion = model.get_layer("fusion")
    assert fusion.units == 4 * ngf and fusion.num_steps == 1
    assert fusion.attention_form == "additive"
    assert fusion.gate_bias_initializer == 1.0
    assert fusion.reset_gate_target == "state"
    assert not fusion.output_projection
    decoder = [
        model.get_layer(name).filters
        for name in (
            "deconv1",
            "deconv1_conv1",
            "deconv1_conv2",
            "deconv2",
            "deconv2_conv1",
            "deconv2_conv2",
            "ab",
        )
    ]
    assert decoder == [8, 8, 8, 4, 4, 4, 2]
    text = model.get_layer("text_encoder")
    assert text.bidirectional and text.mask_zero and text.output_dim == 6


def test_released_defaults():
    # Built symbolically only: the released sizes at 256 x 256.
    released = generator.build_generator(vocabulary_size=50, image_size=256)
    assert released.get_layer("conv6_3").output.shape == (None, 64, 64, 128)
    assert released.get_layer("text_encoder").embedding_dim == 300
    assert released.get_layer("text_encoder").units == 64
    assert released.get_layer("fusion").attention_units == 128
    assert released.output["ab"].shape == (None, 256, 256, 2)


def test_bilinear_attention_is_the_papers_form():
    model = _build(attention_form="bilinear")
    fusion = model.get_layer("fusion")
    assert fusion.attention_form == "bilinear"
    assert fusion.attention_units is None
    names = {weight.path.split("/")[-1] for weight in fusion.weights}
    assert "bilinear_kernel" in names
    assert not names & {"query_kernel", "score_kernel"}
    weights = np.asarray(model(_inputs(), training=False)["attention_weights"])
    np.testing.assert_allclose(weights.sum(axis=2), 1.0, rtol=1e-5)
    assert np.all(weights[0, :, 3:] == 0.0)


def test_any_size_divisible_by_four(model):
    for size in (16, 48):
        outputs = model(_inputs(size=size), training=False)
        assert outputs["ab"].shape == (2, size, size, 2)
        assert outputs["attention_weights"].shape[1] == (size // 4) ** 2


def test_depends_on_the_text(model):
    inputs = _inputs()
    other = dict(inputs, tokens=inputs["tokens"][::-1].copy())
    a = np.asarray(model(inputs, training=False)["ab"])
    b = np.asarray(model(other, training=False)["ab"])
    assert not np.allclose(a, b)


def test_padding_changes_nothing():
    model = _build(max_tokens=None)
    inputs = _inputs()
    padded = dict(
        inputs,
        tokens=np.concatenate(
            [inputs["tokens"], np.zeros((2, 3), "int32")], axis=1
        ),
    )
    a = np.asarray(model(inputs, training=False)["ab"])
    b = np.asarray(model(padded, training=False)["ab"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_no_text_baseline_ignores_the_tokens():
    model = _build(text=False)
    assert set(model.input) == {"lightness", "tokens"}
    assert set(model.output) == {"ab"}
    assert not any(
        layer.name in ("text_encoder", "fusion") for layer in model.layers
    )
    inputs = _inputs()
    other = dict(inputs, tokens=np.full_like(inputs["tokens"], 9))
    np.testing.assert_array_equal(
        model(inputs, training=False)["ab"], model(other, training=False)["ab"]
    )
    assert model.name == "flowers_generator_no_text"


def test_gumbel_variant_emits_the_kept_step():
    model = _build(num_steps=2, termination="gumbel")
    fusion = model.get_layer("fusion")
    assert fusion.output_projection and fusion.termination == "gumbel"
    outputs = model(_inputs(), training=False)
    assert outputs["stop_step"].shape == (2, 8, 8)
    assert outputs["stop_step"].dtype == "int32"
    assert outputs["stop_probabilities"].shape == (2, 8, 8, 2)
    assert outputs["attention_weights"].shape == (2, 64, 5, 2)
    np.testing.assert_allclose(
        np.sum(outputs["stop_probabilities"], axis=-1), 1.0, rtol=1e-5
    )


def test_gumbel_warmup_is_a_fraction_of_the_training():
    model = _build(
        num_steps=2,
        termination="gumbel",
        termination_warmup=0.25,
        training_steps=40,
    )
    assert model.get_layer("fusion").termination_warmup_steps == 10
    assert _build().get_layer("fusion").termination_warmup_steps == 0


def test_word_vectors_are_frozen_unless_asked():
    vectors = np.arange(60, dtype="float32").reshape(10, 6) / 60.0
    frozen = _build(word_vectors=vectors)
    embedding = frozen.get_layer("text_encoder").embedding_layer
    assert not embedding.trainable
    np.testing.assert_array_equal(embedding.embeddings.numpy(), vectors)
    trainable = _build(word_vectors=vectors, train_embeddings=True)
    embedding = trainable.get_layer("text_encoder").embedding_layer
    assert embedding.trainable
    np.testing.assert_array_equal(embedding.embeddings.numpy(), vectors)
    assert _build().get_layer("text_encoder").embedding_layer.trainable
    with pytest.raises(ValueError, match="embedding_dim"):
        _build(word_vectors=np.zeros((10, 7), "float32"))


def test_batch_statistics_always_ignore_the_training_flag(model):
    inputs = _inputs()
    a = np.asarray(model(inputs, training=False)["ab"])
    b = np.asarray(model(inputs, training=True)["ab"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    # Batch statistics: an image's colours depend on its batch companions.
    alone = np.asarray(
        model({k: v[:1] for k, v in inputs.items()}, training=False)["ab"]
    )
    assert not np.allclose(alone[0], a[0], atol=1e-4)


def test_standard_batch_norm_uses_moving_statistics_at_inference():
    model = _build(batch_norm_mode="standard")
    assert isinstance(
        model.get_layer("conv1_1_bn"), keras.layers.BatchNormalization
    )
    inputs = _inputs()
    a = np.asarray(model(inputs, training=False)["ab"])
    alone = np.asarray(
        model({k: v[:1] for k, v in inputs.items()}, training=False)["ab"]
    )
    np.testing.assert_allclose(alone[0], a[0], atol=1e-5)
    b = np.asarray(model(inputs, training=True)["ab"])
    assert not np.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"text": False},
        {"num_steps": 2, "termination": "gumbel"},
        {"attention_form": "bilinear"},
    ],
    ids=["lbie", "no_text", "gumbel", "bilinear"],
)
def test_save_and_reload(tmp_path, overrides):
    vectors = np.random.default_rng(3).normal(size=(10, 6)).astype("float32")
    model = _build(word_vectors=vectors, **overrides)
    inputs = _inputs()
    path = str(tmp_path / "generator.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    expected = model(inputs, training=False)
    actual = reloaded(inputs, training=False)
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=1e-6)
    for a, b in zip(model.weights, reloaded.weights, strict=True):
        assert a.trainable == b.trainable


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 30}, "image_size"),
        ({"ngf": 0}, "ngf"),
        ({"termination": "mixture"}, "termination"),
        ({"batch_norm_mode": "frozen"}, "batch_norm_mode"),
        ({"text": False, "num_steps": 2}, "no-text"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"termination_warmup": 1.0}, "termination_warmup"),
        ({"vocabulary_size": 0}, "vocabulary_size"),
        ({"attention_form": "scaled_dot"}, "attention_form"),
        ({"attention_units": 0}, "attention_units"),
    ],
)
def test_rejects_bad_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        _build(**overrides)


def _reference_batch_statistics(x, gamma, beta, epsilon):
    mean = x.mean(axis=(0, 1, 2), keepdims=True)
    variance = x.var(axis=(0, 1, 2), keepdims=True)
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta


def test_batch_statistics_normalization_equation():
    layer = generator.BatchStatisticsNormalization(epsilon=1e-3)
    x = (
        np.arange(2 * 3 * 3 * 4, dtype="float32").reshape(2, 3, 3, 4) / 10.0
    ) ** 2
    layer.build(x.shape)
    layer.gamma.assign([1.0, 2.0, 0.5, -1.0])
    layer.beta.assign([0.0, 1.0, -1.0, 0.5])
    expected = _reference_batch_statistics(
        x.astype("float64"),
        np.array([1.0, 2.0, 0.5, -1.0]),
        np.array([0.0, 1.0, -1.0, 0.5]),
        1e-3,
    )
    for training in (False, True):
        np.testing.assert_allclose(
            layer(x, training=training), expected, atol=1e-5
        )
    assert not layer.non_trainable_weights


def test_batch_statistics_normalization_checklist():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3) / 10.0
    run_layer_checklist(
        lambda: generator.BatchStatisticsNormalization(synchronized=True),
        x,
        (2, 4, 4, 3),
    )
    with pytest.raises(ValueError, match="epsilon"):
        generator.BatchStatisticsNormalization(epsilon=0)
