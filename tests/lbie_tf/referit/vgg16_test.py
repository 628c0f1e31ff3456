"""Tests of the VGG-16 backbone and its Keras and Hu et al. weight loaders."""

import socket

import keras
import numpy as np
import pytest

from lbie_tf.core import errors
from lbie_tf.referit import vgg16

BGR_MEAN = np.array([103.939, 116.779, 123.68], "float32")
RGB_MEAN = BGR_MEAN[::-1]


def _small_backbone(**kwargs):
    return vgg16.VGG16Backbone(
        filters_scale=1 / 16, fc_units=16, fc8_units=10, seed=0, **kwargs
    )


def _rgb_image(size, batch=1, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3))


def _keras_layout_vgg16(filters_scale, fc_units, classes):
    """keras.applications.VGG16's graph and names at a chosen width.

    BGR minus the BGR mean in (the "caffe" convention), 224 x 224.
    """
    image = keras.Input((224, 224, 3))
    x = image
    for block, (filters, depth) in enumerate(
        zip(vgg16.block_filters(filters_scale), (2, 2, 3, 3, 3), strict=True)
    ):
        for index in range(depth):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                activation="relu",
                kernel_initializer="he_normal",
                bias_initializer=keras.initializers.RandomNormal(0.0, 0.1),
                name=f"block{block + 1}_conv{index + 1}",
            )(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"block{block + 1}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for name, units, activation in (
        ("fc1", fc_units, "relu"),
        ("fc2", fc_units, "relu"),
        ("predictions", classes, None),
    ):
        x = keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer="he_normal",
            bias_initializer=keras.initializers.RandomNormal(0.0, 0.1),
            name=name,
        )(x)
    return keras.Model(image, x)


def _features(model, names, inputs):
    extractor = keras.Model(
        model.input, [model.get_layer(name).output for name in names]
    )
    return [np.asarray(y) for y in extractor(inputs)]


def test_fc8_is_16x16_at_512():
    # The map size does not depend on the width; the full width is below.
    backbone = _small_backbone(image_shape=(512, 512, 3))
    assert tuple(backbone.output.shape) == (None, 16, 16, 10)
    assert tuple(backbone.feature_maps["pool5"].shape) == (None, 16, 16, 32)
    assert tuple(backbone.get_layer("fc6").kernel.shape) == (7, 7, 32, 16)


@pytest.mark.slow
def test_full_size_fc8_is_16x16x1000_at_512():
    backbone = vgg16.VGG16Backbone(image_shape=(512, 512, 3))
    assert tuple(backbone.output.shape) == (None, 16, 16, 1000)
    assert tuple(backbone.feature_maps["pool5"].shape) == (None, 16, 16, 512)
    assert tuple(backbone.feature_maps["fc7"].shape) == (None, 16, 16, 4096)
    assert tuple(backbone.get_layer("fc6").kernel.shape) == (7, 7, 512, 4096)
    assert backbone.count_params() == 138_357_544


def test_same_pooling_rounds_up_and_any_size_is_accepted():
    backbone = _small_backbone()
    # 48 -> 24 -> 12 -> 6 -> 3 -> 2 with "same" pooling.
    outputs = backbone(_rgb_image(48).astype("float32"))
    assert outputs.shape == (1, 2, 2, 10)
    outputs = backbone(_rgb_image(64, batch=2).astype("float32"))
    assert outputs.shape == (2, 2, 2, 10)


@pytest.mark.parametrize("output_layer", vgg16.OUTPUT_LAYERS)
def test_output_layer_ends_the_graph(output_layer):
    backbone = _small_backbone(output_layer=output_layer)
    assert backbone.layers[-1].name == output_layer
    assert set(backbone.feature_maps) >= {"conv1_1", "pool5", output_layer}


def test_freeze_convolutions_trains_only_fc6_to_fc8():
    backbone = _small_backbone(freeze_convolutions=True)
    trained = {w.path.split("/")[-2] for w in backbone.trainable_weights}
    assert trained == {"fc6", "fc7", "fc8"}
    assert len(backbone.non_trainable_weights) == 2 * 13


def test_keras_round_trip(tmp_path):
    backbone = _small_backbone(input_scale=1 / 128, freeze_convolutions=True)
    image = _rgb_image(64).astype("float32")
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, vgg16.VGG16Backbone)
    assert reloaded.get_config() == backbone.get_config()
    np.testing.assert_array_equal(reloaded(image), backbone(image))
    assert len(reloaded.trainable_weights) == 6


def test_keras_conversion_matches_the_bgr_model():
    """Port check at a small width: the Keras-layout model fed BGR minus
    the BGR mean equals the backbone with converted weights fed RGB minus
    the RGB mean, at pool5 and at fc8 (the centre of the 7 x 7 map)."""
    keras.utils.set_random_seed(1)
    keras_model = _keras_layout_vgg16(1 / 16, 16, 10)
    backbone = _small_backbone()
    # The size check is the loaders' job; assign the converted layers here.
    for name, (kernel, bias) in vgg16.keras_vgg16_weights(keras_model).items():
        backbone.get_layer(name).set_weights([kernel, bias])
    rgb = _rgb_image(224, batch=2)
    bgr_input = (rgb[..., ::-1] - BGR_MEAN).astype("float32")
    rgb_input = (rgb - RGB_MEAN).astype("float32")
    pool5, logits = _features(
        keras_model, ["block5_pool", "predictions"], bgr_input
    )
    ours_pool5, ours_fc8 = _features(backbone, ["pool5", "fc8"], rgb_input)
    assert np.abs(logits).max() > 1e-2
    # float32 sums in another order: a relative tolerance of the scale.
    atol = 1e-4 * np.abs(logits).max()
    np.testing.assert_allclose(ours_pool5, pool5, rtol=1e-3, atol=atol)
    np.testing.assert_allclose(ours_fc8[:, 3, 3], logits, rtol=1e-3, atol=atol)
    # The channel order matters: RGB fed to the unconverted kernel differs.
    _, wrong = _features(keras_model, ["block5_pool", "predictions"], rgb_input)
    assert not np.allclose(wrong, logits, rtol=1e-3, atol=1e-3)


def _hu_npz(path, weights, fc_layout):
    """An npz in Hu et al.'s format: processed_W / processed_B dicts."""
    kernels, biases = {}, {}
    for name, (kernel, bias) in weights.items():
        if name in vgg16.FC_LAYERS and fc_layout == "dense":
            kernel = kernel.reshape(-1, kernel.shape[-1])
        kernels[name], biases[name] = kernel, bias
    np.savez(path, processed_W=kernels, processed_B=biases)
    return path


def _tiny_weights(seed=0):
    rng = np.random.default_rng(seed)
    weights = {}
    for name in vgg16.WEIGHT_LAYERS:
        shape = {"fc6": (7, 7, 4, 5), "fc7": (1, 1, 5, 5), "fc8": (1, 1, 5, 3)}
        kernel_shape = shape.get(name, (3, 3, 2, 2))
        weights[name] = (
            rng.normal(size=kernel_shape).astype("float32"),
            rng.normal(size=kernel_shape[-1:]).astype("float32"),
        )
    return weights


@pytest.mark.parametrize("fc_layout", ["dense", "conv"])
def test_convert_hu_npz_reads_both_fc_layouts(fc_layout, tmp_path):
    weights = _tiny_weights()
    path = _hu_npz(tmp_path / "vgg_params.npz", weights, fc_layout)
    converted = vgg16.convert_hu_npz(path)
    assert list(converted) == list(vgg16.WEIGHT_LAYERS)
    for name, (kernel, bias) in weights.items():
        np.testing.assert_array_equal(converted[name][0], kernel)
        np.testing.assert_array_equal(converted[name][1], bias)


def test_convert_hu_npz_errors(tmp_path):
    with pytest.raises(errors.ModelFileError, match="no such file"):
        vgg16.convert_hu_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(errors.ModelFileError, match="processed_W"):
        vgg16.convert_hu_npz(tmp_path / "other.npz")
    weights = _tiny_weights()
    del weights["conv3_2"]
    path = _hu_npz(tmp_path / "partial.npz", weights, "conv")
    with pytest.raises(errors.ModelFileError, match="conv3_2"):
        vgg16.convert_hu_npz(path)
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(errors.ModelFileError, match="not a readable npz"):
        vgg16.convert_hu_npz(tmp_path / "broken.npz")


def test_offline_download_gives_one_usage_error(monkeypatch):
    seen = {}

    def offline_vgg16(**kwargs):
        seen["timeout"] = socket.getdefaulttimeout()
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/...: "
            "None -- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(keras.applications, "VGG16", offline_vgg16)
    before = socket.getdefaulttimeout()
    backbone = vgg16.VGG16Backbone(output_layer="pool5")
    with pytest.raises(errors.UsageError) as raised:
        vgg16.load_vgg16_weights(backbone, "imagenet")
    message = str(raised.value)
    assert "\n" not in message
    for option in (
        "network",
        "Name or service not known",
        "--config.model.vgg16_weights=PATH",
        "--config.model.vgg16_npz=PATH",
        "--config.model.vgg16_weights=none",
    ):
        assert option in message
    assert seen["timeout"] == vgg16.DOWNLOAD_TIMEOUT_SECONDS
    assert socket.getdefaulttimeout() == before


def test_weight_source_errors(tmp_path):
    small = _small_backbone()
    with pytest.raises(errors.UsageError, match="full-size backbone"):
        vgg16.load_vgg16_weights(small, "imagenet")
    with pytest.raises(errors.UsageError, match="full-size backbone"):
        vgg16.load_vgg16_weights(small, vgg16_npz=str(tmp_path / "x.npz"))
    with pytest.raises(errors.UsageError, match="one VGG-16 weight source"):
        vgg16.load_vgg16_weights(small, "none", str(tmp_path / "x.npz"))
    with pytest.raises(errors.UsageError, match="'imagenet', 'none'"):
        vgg16.load_vgg16_weights(small, 3)
    # "none" and None keep the random initialisation.
    vgg16.load_vgg16_weights(small, "none")
    vgg16.load_vgg16_weights(small, None)
    full = vgg16.VGG16Backbone(output_layer="pool5")
    with pytest.raises(errors.ModelFileError, match="no such file"):
        vgg16.load_vgg16_weights(full, str(tmp_path / "missing.h5"))
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(errors.ModelFileError, match=".h5"):
        vgg16.load_vgg16_weights(full, str(tmp_path / "weights.txt"))


def _random_keras_vgg16():
    """keras.applications.VGG16 with random weights (He-scaled kernels and
    non-zero biases, so that every layer's mapping is exercised)."""
    keras.utils.set_random_seed(2)
    model = keras.applications.VGG16(
        weights=None, include_top=True, input_shape=(224, 224, 3)
    )
    rng = np.random.default_rng(2)
    weights = []
    for w in model.get_weights():
        if w.ndim > 1:
            weights.append(w * np.float32(np.sqrt(2.0)))
        else:
            weights.append(rng.normal(0.0, 0.1, w.shape).astype("float32"))
    model.set_weights(weights)
    return model


def _keras_logits(model, bgr_input):
    """Pre-softmax logits and pool5 of keras.applications.VGG16."""
    pool5, fc7 = _features(model, ["block5_pool", "fc2"], bgr_input)
    kernel, bias = model.get_layer("predictions").get_weights()
    return pool5, fc7.astype("float64") @ kernel + bias


@pytest.mark.slow
def test_keras_file_and_hu_npz_give_keras_vgg16_features(tmp_path):
    """Both loading paths at full size: the backbone fed RGB minus the RGB
    mean equals keras.applications.VGG16 fed preprocess_input(rgb) (BGR
    minus the BGR mean), at pool5 and at the fc8 logits."""
    original = _random_keras_vgg16()
    weights_path = str(tmp_path / "vgg16.weights.h5")
    original.save_weights(weights_path)
    rgb = _rgb_image(224, batch=2, seed=3).astype("float32")
    pool5, logits = _keras_logits(
        original, keras.applications.vgg16.preprocess_input(rgb.copy())
    )
    # Hu et al.'s convention is RGB: their conv1_1 is Keras' with the
    # input channels reversed; fc6 as a 7x7 kernel, fc7 and fc8 dense.
    hu_weights = {}
    for name in vgg16.WEIGHT_LAYERS:
        layer = original.get_layer(vgg16.KERAS_LAYER_NAMES[name])
        kernel, bias = layer.get_weights()
        if name == "conv1_1":
            kernel = kernel[:, :, ::-1, :]
        if name == "fc6":
            kernel = kernel.reshape(7, 7, 512, 4096)
        hu_weights[name] = (kernel, bias)
    del original
    npz_path = _hu_npz(tmp_path / "vgg_params.npz", hu_weights, "conv")
    del hu_weights
    rgb_input = rgb - RGB_MEAN

    for source in ({"vgg16_weights": weights_path}, {"vgg16_npz": npz_path}):
        backbone = vgg16.VGG16Backbone()
        vgg16.load_vgg16_weights(backbone, **source)
        ours_pool5, ours_fc8 = _features(backbone, ["pool5", "fc8"], rgb_input)
        scale = np.abs(logits).max()
        assert scale > 1.0
        np.testing.assert_allclose(ours_pool5, pool5, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(
            ours_fc8[:, 3, 3], logits, rtol=1e-3, atol=1e-4 * scale
        )
        del backbone
