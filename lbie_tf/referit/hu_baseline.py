"""Hu et al. 2016's ReferIt segmentation model, the paper's Table 3 baseline."""

import keras
from keras import layers, ops

from keras_layers.bilinear_upsampling import BilinearConv2DTranspose
from keras_layers.word_encoder import WordEncoder
from lbie_tf.referit import vgg16

# VGG-16's five 2x2 poolings: the feature map is 1/32 of the image a side,
# and the deconvolution that undoes it has stride 32 and kernel 64.
FEATURE_STRIDE = 32
UPSAMPLING_KERNEL_SIZE = 2 * FEATURE_STRIDE
SPATIAL_CHANNELS = 8


@keras.saving.register_keras_serializable(package="lbie_referit")
class SpatialCoordinates(keras.layers.Layer):
    """Hu et al. 2016's 8-channel spatial map of a feature grid.

    For the cell in row h and column w of an H x W grid, the channels are
    [xmin, ymin, xmax, ymax, xctr, yctr, 1/W, 1/H] with xmin = 2 w / W - 1,
    xmax = 2 (w + 1) / W - 1, xctr = (xmin + xmax) / 2 and the same for y:
    the cell's box in coordinates that run from -1 to 1 over the grid, and
    its size 1/W, 1/H.

    Call arguments:
      inputs: (B, H, W, C) feature map; only its shape is read.

    Returns:
      (B, H, W, 8), the same for every batch element.
    """

    def call(self, inputs):
        shape = ops.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        rows = ops.cast(ops.arange(height), self.compute_dtype)
        columns = ops.cast(ops.arange(width), self.compute_dtype)
        height = ops.cast(height, self.compute_dtype)
        width = ops.cast(width, self.compute_dtype)
        x_min = columns / width * 2.0 - 1.0
        x_max = (columns + 1.0) / width * 2.0 - 1.0
        y_min = rows / height * 2.0 - 1.0
        y_max = (rows + 1.0) / height * 2.0 - 1.0
        ones = ops.ones_like(inputs[:1, :, :, 0])[0]
        x_min, x_max = x_min[None, :] * ones, x_max[None, :] * ones
        y_min, y_max = y_min[:, None] * ones, y_max[:, None] * ones
        grid = ops.stack(
            [
                x_min,
                y_min,
                x_max,
                y_max,
                (x_min + x_max) / 2.0,
                (y_min + y_max) / 2.0,
                ones / width,
                ones / height,
            ],
            axis=-1,
        )
        return ops.broadcast_to(
            grid[None], (batch, *ops.shape(grid)[:2], SPATIAL_CHANNELS)
        )

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:3], SPATIAL_CHANNELS)


@keras.saving.register_keras_serializable(package="lbie_referit")
class L2Normalization(keras.layers.Layer):
    """x / ||x||_2 over the last axis, as Hu et al. 2016 normalise the text
    and visual features (TensorFlow's l2_normalize, which they use:
    x * rsqrt(max(sum x^2, epsilon)))."""

    def __init__(self, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        square_sum = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(square_sum, self.epsilon))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="lbie_referit")
class TileToMap(keras.layers.Layer):
    """Repeats a (B, K) vector at every cell of a (B, H, W, C) map, as Hu
    et al. 2016 tile the LSTM's last output over the image grid.

    Call arguments:
      vector: (B, K).
      feature_map: (B, H, W, C); only its shape is read.

    Returns:
      (B, H, W, K).
    """

    def call(self, vector, feature_map):
        shape = ops.shape(feature_map)
        return ops.broadcast_to(
            vector[:, None, None, :],
            (shape[0], shape[1], shape[2], ops.shape(vector)[-1]),
        )

    def compute_output_shape(self, vector_shape, feature_map_shape):
        return (*tuple(feature_map_shape)[:3], tuple(vector_shape)[-1])


@keras.saving.register_keras_serializable(package="lbie_referit")
class ConstantText(keras.layers.Layer):
    """A learned text representation that ignores the expression.

    The text-blind control of the ReferIt models: the same network with the
    text encoder replaced by one trained tensor, so the prediction cannot
    depend on what the expression says (not in the paper or in Hu et al.;
    a control for the synthetic experiments).

    Args:
      shape: the per-example shape, e.g. (K,) for a sentence vector or
        (L, K) for word features.
      seed: optional int seeding the initializer.

    Call arguments:
      inputs: (B, ...) token ids; only the batch size is read.

    Returns:
      (B, *shape), the same for every example.
    """

    def __init__(self, shape, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(d) for d in shape)
        self.seed = seed

    def build(self, input_shape):
        # Uniform in +-0.05 like a Keras embedding; not zeros, so that the
        # L2 normalisation of the baseline has a finite gradient.
        self.value = self.add_weight(
            name="value",
            shape=self.shape,
            initializer=keras.initializers.RandomUniform(
                -0.05, 0.05, seed=self.seed
            ),
        )

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        value = ops.cast(self.value, self.compute_dtype)
        return ops.broadcast_to(value[None], (batch, *self.shape))

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape)[0], *self.shape)

    def get_config(self):
        config = super().get_config()
        config.update({"shape": self.shape, "seed": self.seed})
        return config


def check_image_size(image_size):
    """Raises ValueError unless `image_size` is a positive multiple of 32."""
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or image_size <= 0
        or image_size % FEATURE_STRIDE
    ):
        raise ValueError(
            "`image_size` must be a positive multiple of 32 (VGG-16 pools "
            f"five times); received image_size={image_size!r}."
        )


def build_backbone(
    image_size,
    output_layer,
    filters_scale,
    fc_units,
    fc8_units,
    input_scale,
    freeze_convolutions,
    vgg16_weights,
    vgg16_npz,
    seed,
):
    """The VGG-16 of both ReferIt models, with its weights loaded (see
    `vgg16.load_vgg16_weights`)."""
    backbone = vgg16.VGG16Backbone(
        filters_scale=filters_scale,
        fc_units=fc_units,
        fc8_units=fc8_units,
        output_layer=output_layer,
        freeze_convolutions=freeze_convolutions,
        input_scale=input_scale,
        image_shape=(image_size, image_size, 3),
        seed=seed,
        name="vgg16",
    )
    vgg16.load_vgg16_weights(backbone, vgg16_weights, vgg16_npz)
    return backbone


def offset_seed(seed, offset):
    """`seed + offset`, or None when unseeded."""
    return None if seed is None else int(seed) + offset


def build_hu_baseline(
    image_size=512,
    max_tokens=20,
    vocabulary_size=8803,
    embedding_dim=1000,
    lstm_units=1000,
    mlp_units=500,
    filters_scale=1.0,
    fc_units=4096,
    fc8_units=1000,
    input_scale=1.0,
    freeze_convolutions=True,
    bilinear_variant="hu",
    text_blind=False,
    vgg16_weights="imagenet",
    vgg16_npz=None,
    seed=None,
):
    """Builds Hu et al. 2016's model (their "upsample32s" segmentation net).

    image: VGG-16 to fc8 as convolutions (`vgg16.VGG16Backbone`): a
    16 x 16 x 1000 map at 512 x 512; text: a learned word embedding
    (1000-d) and an LSTM (1000 units) over the 20 token ids, unmasked as in
    Hu et al., whose last output (the last word, since expressions are
    left-padded) is the expression vector; both L2-normalised (the visual
    features per cell, over channels), the text vector tiled over the grid
    and concatenated with the visual features and the 8-channel
    `SpatialCoordinates`; a 1x1 convolution with 500 filters and ReLU, a
    1x1 convolution to one channel, and a bilinear-initialised transposed
    convolution (kernel 64, stride 32, no bias, trained) back to the image
    size. The MLP starts from Hu et al.'s normal initialisation (std 0.05
    and 0.1). Weight decay (Hu et al.: 5e-4 on the kernels, not the
    biases) belongs to the optimizer.

    Args:
      image_size: S, the square input side, a multiple of 32 (512 in Hu
        et al.).
      max_tokens: L, token ids per expression (20).
      vocabulary_size: token ids (8,803 for ReferIt's vocabulary).
      embedding_dim, lstm_units, mlp_units: 1000, 1000, 500 in Hu et al.
      filters_scale, fc_units, fc8_units, input_scale: the backbone's size
        and input scale (`vgg16.VGG16Backbone`); the defaults are VGG-16.
      freeze_convolutions: whether conv1_1 ... conv5_3 are not trained
        (Hu et al.); fc6-fc8 are.
      bilinear_variant: the deconvolution's initial kernel, "hu" (Hu et
        al.'s) or "fcn" (see `BilinearConv2DTranspose`).
      text_blind: replace the LSTM's vector by a learned constant
        (`ConstantText`), so the model cannot read the expression.
      vgg16_weights, vgg16_npz: the backbone's weights, see
        `vgg16.load_vgg16_weights` ("none" trains it from scratch).
      seed: optional int making the initial weights reproducible.

    Returns:
      A keras.Model from {"image" float32 (B, S, S, 3), RGB minus
      `vgg16.RGB_MEAN`; "expression" int32 (B, L), left-padded with 0} to
      {"logits" float32 (B, S, S, 1)}: per-pixel logits of "the pixel
      belongs to the referred object" (foreground where > 0).
    """
    check_image_size(image_size)
    image = keras.Input((image_size, image_size, 3), name="image")
    expression = keras.Input((max_tokens,), dtype="int32", name="expression")

    backbone = build_backbone(
        image_size,
        "fc8",
        filters_scale,
        fc_units,
        fc8_units,
        input_scale,
        freeze_convolutions,
        vgg16_weights,
        vgg16_npz,
        seed,
    )
    visual = backbone(image)
    if text_blind:
        text = ConstantText(
            (lstm_units,), seed=offset_seed(seed, 100), name="constant_text"
        )(expression)
    else:
        text = WordEncoder(
            lstm_units,
            vocabulary_size,
            embedding="learned",
            embedding_dim=embedding_dim,
            return_sequences=False,
            mask_zero=False,
            seed=offset_seed(seed, 100),
            name="text_encoder",
        )(expression)
    text_map = TileToMap(name="tile_text")(
        L2Normalization(name="text_l2")(text), visual
    )
    features = layers.Concatenate(name="features")(
        [
            text_map,
            L2Normalization(name="visual_l2")(visual),
            SpatialCoordinates(name="spatial")(visual),
        ]
    )
    x = layers.Conv2D(
        mlp_units,
        1,
        activation="relu",
        kernel_initializer=keras.initializers.RandomNormal(
            stddev=0.05, seed=offset_seed(seed, 200)
        ),
        name="mlp_l1",
    )(features)
    x = layers.Conv2D(
        1,
        1,
        kernel_initializer=keras.initializers.RandomNormal(
            stddev=0.1, seed=offset_seed(seed, 201)
        ),
        name="mlp_l2",
    )(x)
    logits = BilinearConv2DTranspose(
        1,
        UPSAMPLING_KERNEL_SIZE,
        FEATURE_STRIDE,
        variant=bilinear_variant,
        use_bias=False,
        padding="same",
        name="upsampling",
    )(x)
    logits = layers.Identity(name="logits")(logits)
    return keras.Model(
        {"image": image, "expression": expression},
        {"logits": logits},
        name="referit_hu_baseline" + ("_text_blind" if text_blind else ""),
    )
