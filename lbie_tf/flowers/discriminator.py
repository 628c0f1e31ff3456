"""The flowers discriminator: a text-conditioned PatchGAN (paper section 4.3).

Paper section 3 ("Discriminator"): a CNN on the colour image, its own LSTM
over the caption, and attention aligning the words with each image region;
"parameters of the LSTM and the attention map are not shared" with the
generator's. The released model is a pix2pix PatchGAN on concat(L, ab)
with a fusion block of its own between its last convolution and the
per-patch score. The paper's "256, 128, 64, 32, 31" are the spatial sizes
of pix2pix's layers; "the discriminator score is the average of the final
output" is the mean over patches that the losses take.

The model returns LOGITS: the sigmoid of the release lives in the losses
(`BinaryCrossentropy(from_logits=True)` in `gan.ColorizationGAN`), which
is the release's -log D losses without its log(x + 1e-12) guard and
numerically safer.
"""

import math

import keras
from keras import layers

from keras_layers.argument_checks import check_positive_int
from lbie_tf.flowers import generator as generator_lib

# Seeds of the discriminator's layers start here, so that its text encoder
# does not start as a copy of the generator's when both get one seed.
SEED_OFFSET = 10000


def patch_grid_size(image_size):
    """The side of the patch grid for an image of side `image_size`.

    Three 4x4 stride-2 convolutions with "same" padding (pix2pix's one
    pixel of zero padding, for even sides) take S to ceil(S / 8); the
    stride-1 512-filter convolution is unpadded (-3); the fusion and the
    final convolution ("same") keep the size: 256 -> 29, the released
    29 x 29 patches.
    """
    side = image_size
    for _ in range(3):
        side = math.ceil(side / 2)
    return side - 3


def build_discriminator(
    vocabulary_size,
    image_size=None,
    max_tokens=None,
    filters=64,
    embedding_dim=300,
    word_vectors=None,
    train_embeddings=None,
    lstm_units=64,
    attention_form="additive",
    attention_units=128,
    gate_bias=1.0,
    update_convention="original",
    text=True,
    seed=None,
    name=None,
):
    """Builds the released text-conditioned PatchGAN.

    concat(L, ab) -> 4x4 convolutions of `filters` x (1, 2, 4, 8) (64,
    128, 256, 512), strides 2, 2, 2, 1, each with LeakyReLU 0.2 and no
    normalization -> a fusion block with its own word embedding, BiLSTM and
    attention (additive in the release), one step, a per-pixel C-GRU of 8
    filters units, gate bias 1.0, as in the generator -> a 4x4 convolution
    to one logit per patch. Padding: "same" for the stride-2 convolutions
    and the last one, none for the stride-1 one, which gives the released
    29 x 29 grid at 256 x 256 (`patch_grid_size`); the spec of the release
    gives the grid but not the paddings, and pix2pix's own would give
    30 x 30.

    Args:
      vocabulary_size, max_tokens, embedding_dim, word_vectors,
      train_embeddings, lstm_units, attention_form, attention_units,
      gate_bias, update_convention, seed: as in
        `generator.build_generator`; the discriminator's text layers have
        weights of their own.
      image_size: S, or None for any size with `patch_grid_size(S) >= 1`
        (S >= 25).
      filters: width of the first convolution (64).
      text: False drops the fusion block (the no-text baseline's
        discriminator); "tokens" stays an unused input.
      name: the model's name; None derives one.

    Returns:
      A keras.Model from {"lightness" (B, S, S, 1), "ab" (B, S, S, 2),
      "tokens" int32 (B, L)} to the patch logits (B, P, P, 1), P =
      `patch_grid_size(S)`.
    """
    check_positive_int("vocabulary_size", vocabulary_size)
    check_positive_int("filters", filters)
    generator_lib.check_max_tokens(max_tokens)
    if image_size is not None:
        check_positive_int("image_size", image_size)
        if patch_grid_size(image_size) < 1:
            raise ValueError(
                "`image_size` must be at least 25 for a 4x4 convolution "
                f"after three stride-2 ones; received image_size="
                f"{image_size!r}."
            )
    if text:
        generator_lib.check_text_settings(
            embedding_dim, lstm_units, attention_form, attention_units
        )
    seed = generator_lib.offset_seed(seed, SEED_OFFSET)

    lightness = keras.Input((image_size, image_size, 1), name="lightness")
    ab = keras.Input((image_size, image_size, 2), name="ab")
    tokens = keras.Input((max_tokens,), dtype="int32", name="tokens")
    x = layers.Concatenate(name="lab")([lightness, ab])
    for index, (multiple, strides) in enumerate(
        ((1, 2), (2, 2), (4, 2), (8, 1)), start=1
    ):
        x = layers.Conv2D(
            multiple * filters,
            4,
            strides=strides,
            padding="same" if strides == 2 else "valid",
            kernel_initializer=generator_lib.glorot(seed, index),
            name=f"conv{index}",
        )(x)
        x = layers.LeakyReLU(0.2, name=f"conv{index}_leaky_relu")(x)
    if text:
        memory, mask = generator_lib.encode_text(
            tokens,
            vocabulary_size,
            embedding_dim,
            word_vectors,
            train_embeddings,
            lstm_units,
            generator_lib.offset_seed(seed, 1000),
            "text_encoder",
        )
        fusion = generator_lib.fusion_layer(
            8 * filters,
            attention_units,
            gate_bias,
            update_convention,
            generator_lib.offset_seed(seed, 2000),
            "fusion",
            attention_form=attention_form,
        )
        x = fusion(x, memory, mask=mask)["fused"]
    logits = layers.Conv2D(
        1,
        4,
        padding="same",
        kernel_initializer=generator_lib.glorot(seed, 10),
        name="logits",
    )(x)
    if name is None:
        name = "flowers_discriminator" + ("" if text else "_no_text")
    return keras.Model(
        {"lightness": lightness, "ab": ab, "tokens": tokens}, logits, name=name
    )
