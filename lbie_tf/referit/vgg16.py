"""VGG-16 as a fully convolutional backbone, with its two sources of weights."""

import os
import socket

import keras
import numpy as np
from keras import layers

from lbie_tf.core import errors

# The input convention of the backbone (Hu et al. 2016): 0..255 RGB pixels
# minus this RGB mean, no division by 255. Keras' ImageNet weights expect
# the same mean in BGR order ("caffe" preprocessing), which the loader
# turns into this convention.
RGB_MEAN = (123.68, 116.779, 103.939)

# Hu et al.'s layer names, which the backbone uses too, in graph order.
CONV_LAYERS = (
    "conv1_1",
    "conv1_2",
    "conv2_1",
    "conv2_2",
    "conv3_1",
    "conv3_2",
    "conv3_3",
    "conv4_1",
    "conv4_2",
    "conv4_3",
    "conv5_1",
    "conv5_2",
    "conv5_3",
)
FC_LAYERS = ("fc6", "fc7", "fc8")
WEIGHT_LAYERS = CONV_LAYERS + FC_LAYERS
OUTPUT_LAYERS = ("pool5", "fc6", "fc7", "fc8")

# keras.applications.VGG16's name for each of the layers above.
KERAS_LAYER_NAMES = {
    **{name: f"block{name[4]}_conv{name[6]}" for name in CONV_LAYERS},
    "fc6": "fc1",
    "fc7": "fc2",
    "fc8": "predictions",
}

# Filters of the five convolution blocks and the number of convolutions in
# each (Simonyan and Zisserman's configuration D).
_BLOCK_FILTERS = (64, 128, 256, 512, 512)
_BLOCK_DEPTHS = (2, 2, 3, 3, 3)

# Seconds a socket may wait during the ImageNet download: long enough for
# a slow connection, short enough that a machine without a network fails
# at once instead of hanging.
DOWNLOAD_TIMEOUT_SECONDS = 20.0

_OPTIONS = (
    "give one of: a network connection (Keras downloads its ImageNet "
    "weights); --config.model.vgg16_weights=PATH to a local Keras VGG16 "
    "weights file with the top (.h5 or .weights.h5, as saved by "
    "keras.applications.VGG16(include_top=True)); "
    "--config.model.vgg16_npz=PATH to Hu et al.'s vgg_params.npz; or "
    "--config.model.vgg16_weights=none to train the backbone from scratch"
)


def block_filters(filters_scale):
    """The five blocks' filter counts at `filters_scale` (at least 1)."""
    return tuple(max(1, int(round(f * filters_scale))) for f in _BLOCK_FILTERS)


@keras.saving.register_keras_serializable(package="lbie_referit")
class VGG16Backbone(keras.Model):
    """VGG-16 with fc6-fc8 as convolutions, as in Hu et al. 2016.

    13 3x3 convolutions with ReLU in five blocks, each block ending in a
    2x2 max pooling of stride 2, then fc6 as a 7x7 convolution (ReLU), fc7
    as a 1x1 convolution (ReLU) and fc8 as a 1x1 convolution without ReLU,
    as in Hu et al.'s fully convolutional VGG-16. Every convolution and
    pooling uses "same" padding, as theirs: a 512 x 512 image gives a
    16 x 16 pool5 map (ceil(S / 32) a side), and the 7x7 fc6 keeps it, so
    fc8 is 16 x 16 x 1000. At a 224 x 224 input the centre location (3, 3)
    of fc8 is exactly the classifier output of the original VGG-16, since
    fc6's window there covers the whole 7 x 7 pool5 map.

    Input: float (B, H, W, 3), RGB pixels in 0..255 minus `RGB_MEAN` (the
    convention of Hu et al. and of `load_keras_imagenet_weights`).

    `feature_maps` maps "conv1_1" ... "conv5_3", "pool1" ... "pool5" and
    "fc6" ... "fc8" (those built) to their symbolic outputs, for feature
    extractors: `keras.Model(backbone.inputs, backbone.feature_maps[name])`.

    Args:
      filters_scale: multiplies the convolution filters (64 ... 512); 1 for
        pretrained weights, e.g. 1/16 for a small backbone trained from
        scratch.
      fc_units: filters of fc6 and fc7 (4096 in VGG-16).
      fc8_units: filters of fc8 (1000 ImageNet classes in VGG-16).
      output_layer: where the graph ends and what the model returns:
        "pool5", "fc6", "fc7" or "fc8".
      freeze_convolutions: whether conv1_1 ... conv5_3 are not trained (Hu
        et al. train only fc6-fc8 of the VGG-16); fc6-fc8 stay trainable.
      input_scale: multiplies the input before conv1_1; 1 for pretrained
        weights (which expect the 0..255 range); a smaller value (e.g.
        1/128) keeps the activations of a backbone trained from scratch
        small.
      image_shape: the input shape (H, W, 3); H and W may be None.
      seed: optional int seeding the initializers (He normal kernels, zero
        biases; they matter only when no weights are loaded).
    """

    def __init__(
        self,
        filters_scale=1.0,
        fc_units=4096,
        fc8_units=1000,
        output_layer="fc8",
        freeze_convolutions=False,
        input_scale=1.0,
        image_shape=(None, None, 3),
        seed=None,
        **kwargs,
    ):
        if isinstance(filters_scale, bool) or not (
            isinstance(filters_scale, (int, float)) and filters_scale > 0
        ):
            raise ValueError(
                "`filters_scale` must be a positive number; received "
                f"filters_scale={filters_scale!r}."
            )
        for field, value in (("fc_units", fc_units), ("fc8_units", fc8_units)):
            if isinstance(value, bool) or not (
                isinstance(value, (int, np.integer)) and value > 0
            ):
                raise ValueError(
                    f"`{field}` must be a positive integer; received "
                    f"{field}={value!r}."
                )
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(
                f"`output_layer` must be one of {OUTPUT_LAYERS}; received "
                f"output_layer={output_layer!r}."
            )
        if isinstance(input_scale, bool) or not (
            isinstance(input_scale, (int, float)) and input_scale > 0
        ):
            raise ValueError(
                "`input_scale` must be a positive number; received "
                f"input_scale={input_scale!r}."
            )
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or image_shape[-1] != 3:
            raise ValueError(
                "`image_shape` must be (height, width, 3); received "
                f"image_shape={image_shape!r}."
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
        ):
            raise ValueError(
                f"`seed` must be None or an integer; received seed={seed!r}."
            )

        # === Functional Model ===
        image = keras.Input(image_shape, name="image")
        x = image
        if input_scale != 1.0:
            x = layers.Rescaling(float(input_scale), name="input_scale")(x)
        feature_maps = {}
        conv_names = iter(CONV_LAYERS)
        offset = 0
        for block, (filters, depth) in enumerate(
            zip(block_filters(filters_scale), _BLOCK_DEPTHS, strict=True)
        ):
            for _ in range(depth):
                name = next(conv_names)
                x = layers.Conv2D(
                    filters,
                    3,
                    padding="same",
                    activation="relu",
                    kernel_initializer=_he_normal(seed, offset),
                    trainable=not freeze_convolutions,
                    name=name,
                )(x)
                feature_maps[name] = x
                offset += 1
            x = layers.MaxPooling2D(
                2, strides=2, padding="same", name=f"pool{block + 1}"
            )(x)
            feature_maps[f"pool{block + 1}"] = x
        for name, filters, kernel_size, activation in (
            ("fc6", fc_units, 7, "relu"),
            ("fc7", fc_units, 1, "relu"),
            ("fc8", fc8_units, 1, None),
        ):
            if OUTPUT_LAYERS.index(output_layer) < OUTPUT_LAYERS.index(name):
                break
            x = layers.Conv2D(
                int(filters),
                kernel_size,
                padding="same",
                activation=activation,
                kernel_initializer=_he_normal(seed, offset),
                name=name,
            )(x)
            feature_maps[name] = x
            offset += 1
        super().__init__(inputs=image, outputs=x, **kwargs)

        # === Config ===
        self.filters_scale = float(filters_scale)
        self.fc_units = int(fc_units)
        self.fc8_units = int(fc8_units)
        self.output_layer = output_layer
        self.freeze_convolutions = bool(freeze_convolutions)
        self.input_scale = float(input_scale)
        self.image_shape = image_shape
        self.seed = None if seed is None else int(seed)
        self.feature_maps = feature_maps

    @property
    def is_full_size(self):
        """Whether the layer sizes are VGG-16's, so that pretrained weights
        fit."""
        return (
            self.filters_scale == 1.0
            and self.fc_units == 4096
            and self.fc8_units == 1000
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "filters_scale": self.filters_scale,
            "fc_units": self.fc_units,
            "fc8_units": self.fc8_units,
            "output_layer": self.output_layer,
            "freeze_convolutions": self.freeze_convolutions,
            "input_scale": self.input_scale,
            "image_shape": self.image_shape,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _he_normal(seed, offset):
    if seed is None:
        return "he_normal"
    return keras.initializers.HeNormal(seed=int(seed) + offset)


# --- Weights -------------------------------------------------------------


def check_full_size(backbone):
    """Raises UsageError unless pretrained VGG-16 weights fit `backbone`."""
    if not backbone.is_full_size or backbone.input_scale != 1.0:
        raise errors.UsageError(
            "Pretrained VGG-16 weights need the full-size backbone "
            "(filters_scale=1, fc_units=4096, fc8_units=1000, input_scale=1); "
            f"received filters_scale={backbone.filters_scale}, "
            f"fc_units={backbone.fc_units}, fc8_units={backbone.fc8_units}, "
            f"input_scale={backbone.input_scale}. Use vgg16_weights=none to "
            "train a smaller backbone from scratch."
        )


def set_backbone_weights(backbone, weights):
    """Assigns {layer name: (kernel, bias)} to the backbone's layers.

    Layers the backbone does not build (fc6-fc8 when it ends earlier) are
    skipped; every layer it builds must be given.

    Args:
      backbone: a `VGG16Backbone` of the full VGG-16 size.
      weights: a dict from Hu et al.'s layer names (`WEIGHT_LAYERS`) to
        (kernel (k, k, in, out), bias (out,)) arrays, as returned by
        `keras_vgg16_weights` or `convert_hu_npz`.

    Raises:
      UsageError: the backbone is not of the full VGG-16 size or its input
        is rescaled.
      ModelFileError: a layer is missing or has the wrong shape.
    """
    check_full_size(backbone)
    built = {layer.name for layer in backbone.layers}
    for name in WEIGHT_LAYERS:
        if name not in built:
            continue
        if name not in weights:
            raise errors.ModelFileError(
                f"The VGG-16 weights have no layer {name!r}; they hold "
                f"{sorted(weights)}."
            )
        layer = backbone.get_layer(name)
        kernel, bias = weights[name]
        expected = tuple(layer.kernel.shape), tuple(layer.bias.shape)
        if (np.shape(kernel), np.shape(bias)) != expected:
            raise errors.ModelFileError(
                f"The VGG-16 weights of layer {name!r} have shapes "
                f"{np.shape(kernel)} and {np.shape(bias)}; the backbone needs "
                f"{expected[0]} and {expected[1]}."
            )
        layer.set_weights([kernel, bias])


def keras_vgg16_weights(keras_model):
    """The weights of a `keras.applications.VGG16(include_top=True)` model
    in the backbone's layout and input convention.

    The dense fc1, fc2 and predictions kernels (25088 x 4096, 4096 x 4096,
    4096 x 1000) become the fc6, fc7, fc8 convolution kernels (7, 7, 512,
    4096), (1, 1, 4096, 4096), (1, 1, 4096, 1000): Keras flattens pool5 in
    (row, column, channel) order, which a C-order reshape undoes. Keras'
    ImageNet weights expect BGR pixels minus the BGR mean; the backbone's
    input is RGB minus the same mean in RGB order, i.e. the same values
    with the channel axis reversed, so the input-channel axis of conv1_1's
    kernel is reversed: the same image then gives the same features.

    Args:
      keras_model: a model with keras.applications.VGG16's layer names
        (block1_conv1 ... block5_conv3, fc1, fc2, predictions).

    Returns:
      {layer name: (kernel, bias)} over `WEIGHT_LAYERS`.
    """
    weights = {}
    for name in WEIGHT_LAYERS:
        source = keras_model.get_layer(KERAS_LAYER_NAMES[name])
        kernel, bias = (np.asarray(w) for w in source.get_weights())
        if name == "conv1_1":
            kernel = kernel[:, :, ::-1, :]
        elif name in FC_LAYERS:
            kernel = _as_fc_conv_kernel(name, kernel)
        weights[name] = (np.ascontiguousarray(kernel), bias)
    return weights


def _as_fc_conv_kernel(name, kernel):
    """fc6-fc8 kernels, dense (in, out) or already 4-D, as convolutions."""
    out = kernel.shape[-1]
    size = 7 if name == "fc6" else 1
    in_channels = kernel.size // (size * size * out)
    if in_channels * size * size * out != kernel.size:
        raise errors.ModelFileError(
            f"The VGG-16 kernel of {name!r} has shape {kernel.shape}, which "
            f"is not a {size}x{size} convolution kernel."
        )
    return kernel.reshape(size, size, in_channels, out)


def load_keras_imagenet_weights(backbone, path=None):
    """Loads Keras' ImageNet VGG-16 weights into the backbone.

    The weights come from `keras.applications.VGG16(weights="imagenet",
    include_top=True)` (Keras downloads them once into ~/.keras/models),
    or from `path`, a weights file of that model (.h5 as Keras downloads
    it, or .weights.h5 as `save_weights` writes it). See
    `keras_vgg16_weights` for the layout and channel-order conversion.

    Args:
      backbone: a full-size `VGG16Backbone`.
      path: None (download) or a local weights file.

    Raises:
      UsageError: no path and the download failed (e.g. no network); the
        message lists the other sources.
      ModelFileError: `path` is missing or does not hold VGG16 weights.
    """
    check_full_size(backbone)
    if path is None:
        keras_model = _download_keras_vgg16()
    else:
        keras_model = _read_keras_vgg16(path)
    set_backbone_weights(backbone, keras_vgg16_weights(keras_model))


def _download_keras_vgg16():
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_SECONDS)
    try:
        return keras.applications.VGG16(weights="imagenet", include_top=True)
    except Exception as error:  # Keras raises a bare Exception offline.
        raise errors.UsageError(
            "Could not get Keras' ImageNet VGG-16 weights "
            f"({errors.one_line(error)}); {_OPTIONS}."
        ) from error
    finally:
        socket.setdefaulttimeout(previous)


def _read_keras_vgg16(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise errors.ModelFileError(
            f"--config.model.vgg16_weights={path}: no such file; it must be a "
            "Keras VGG16 weights file with the top (.h5 or .weights.h5)."
        )
    if not path.endswith((".h5", ".hdf5")):
        raise errors.ModelFileError(
            f"--config.model.vgg16_weights={path}: expected a Keras weights "
            "file ending in .h5 or .weights.h5."
        )
    keras_model = keras.applications.VGG16(
        weights=None, include_top=True, input_shape=(224, 224, 3)
    )
    try:
        keras_model.load_weights(path)
    except Exception as error:  # h5py and Keras raise several types.
        raise errors.ModelFileError(
            f"--config.model.vgg16_weights={path} does not hold the weights "
            "of keras.applications.VGG16(include_top=True): "
            f"{errors.one_line(error)}"
        ) from error
    return keras_model


def _named_arrays(value, key, path):
    """Hu et al.'s processed_W / processed_B: a pickled dict (a 0-d object
    array) or a structured array with one field per layer."""
    if value.dtype == object and value.shape == ():
        value = value.item()
    elif value.dtype.names:
        value = {name: value[name] for name in value.dtype.names}
    if not hasattr(value, "keys"):
        raise errors.ModelFileError(
            f"{path}: `{key}` must map layer names to arrays (a dict as in "
            f"Hu et al.'s vgg_params.npz); received {type(value).__name__}."
        )
    return value


def convert_hu_npz(npz_path):
    """Reads Hu et al.'s `vgg_params.npz` in the backbone's layout.

    The file holds `processed_W` and `processed_B`, each a dict from the
    layer names conv1_1 ... fc8 to arrays, converted by Hu et al. from the
    Caffe VGG-16 for TensorFlow: convolution kernels as (h, w, in, out),
    already for RGB input minus the RGB mean (no channel reversal here).
    fc6-fc8 may be stored as dense (in, out) matrices, as the fc layers of
    Hu et al.'s detection model are, or as convolution kernels; either is
    reshaped in C order to (7, 7, 512, 4096), (1, 1, 4096, 4096) and
    (1, 1, 4096, 1000), as Hu et al. reshape them for their segmentation
    model. The file is read with pickling allowed, since that is how Hu et
    al. stored the dicts: open only files you trust.

    Args:
      npz_path: path of the .npz file.

    Returns:
      {layer name: (kernel, bias)} over `WEIGHT_LAYERS`, float32.

    Raises:
      ModelFileError: the file is missing or not in this format.
    """
    path = os.fspath(npz_path)
    if not os.path.isfile(path):
        raise errors.ModelFileError(
            f"--config.model.vgg16_npz={path}: no such file; it must be Hu et "
            "al.'s vgg_params.npz (keys processed_W and processed_B)."
        )
    try:
        with np.load(path, allow_pickle=True) as contents:
            missing = {"processed_W", "processed_B"} - set(contents.files)
            if missing:
                raise errors.ModelFileError(
                    f"{path}: an npz of Hu et al.'s format needs the keys "
                    f"processed_W and processed_B; it lacks {sorted(missing)} "
                    f"(it holds {sorted(contents.files)})."
                )
            kernels = _named_arrays(
                contents["processed_W"], "processed_W", path
            )
            biases = _named_arrays(contents["processed_B"], "processed_B", path)
    except errors.ModelFileError:
        raise
    except Exception as error:  # zipfile, pickle and NumPy errors.
        raise errors.ModelFileError(
            f"{path} is not a readable npz file: {errors.one_line(error)}"
        ) from error
    weights = {}
    for name in WEIGHT_LAYERS:
        if name not in kernels or name not in biases:
            raise errors.ModelFileError(
                f"{path}: layer {name!r} is missing from processed_W or "
                "processed_B."
            )
        kernel = np.asarray(kernels[name], dtype="float32")
        if name in FC_LAYERS:
            kernel = _as_fc_conv_kernel(name, kernel)
        bias = np.asarray(biases[name], dtype="float32").reshape(-1)
        weights[name] = (kernel, bias)
    return weights


def load_hu_npz_weights(backbone, npz_path):
    """Loads Hu et al.'s `vgg_params.npz` (see `convert_hu_npz`) into the
    backbone."""
    check_full_size(backbone)
    set_backbone_weights(backbone, convert_hu_npz(npz_path))


def load_vgg16_weights(backbone, vgg16_weights="imagenet", vgg16_npz=None):
    """Loads the backbone's weights from the source a config names.

    Args:
      backbone: a `VGG16Backbone`.
      vgg16_weights: "imagenet" (Keras' weights, downloaded once), "none"
        or None (keep the random initialisation, to train from scratch), or
        the path of a local Keras VGG16 weights file (see
        `load_keras_imagenet_weights`).
      vgg16_npz: None, or the path of Hu et al.'s vgg_params.npz (see
        `convert_hu_npz`); it replaces the "imagenet" default.

    Raises:
      UsageError: both a Keras weights path (or "none") and an npz are
        given, or the download failed.
      ModelFileError: a file is missing or unreadable.
    """
    no_weights = vgg16_weights is None or (
        isinstance(vgg16_weights, str) and vgg16_weights.lower() == "none"
    )
    if vgg16_npz is not None:
        if vgg16_weights != "imagenet":
            raise errors.UsageError(
                "Give one VGG-16 weight source: --config.model.vgg16_npz="
                f"{vgg16_npz} and --config.model.vgg16_weights="
                f"{vgg16_weights} were both given."
            )
        load_hu_npz_weights(backbone, vgg16_npz)
    elif no_weights:
        return
    elif vgg16_weights == "imagenet":
        load_keras_imagenet_weights(backbone)
    elif isinstance(vgg16_weights, (str, os.PathLike)):
        load_keras_imagenet_weights(backbone, vgg16_weights)
    else:
        raise errors.UsageError(
            "--config.model.vgg16_weights must be 'imagenet', 'none' or a "
            f"path; received {vgg16_weights!r}."
        )
