"""The flowers colorization generator (paper section 4.3, the released model).

Lightness in, ab out: a convolutional encoder of the L channel to a
stride-4 feature map V, a BiLSTM over the caption's words, the recurrent
attentive fusion of section 3 (one step in the paper and the release), and
a deconvolutional decoder to tanh ab. `text=False` is the paper's no-text
baseline (Figure 6, Table 4): the same encoder and decoder with the fusion
and the text path removed, a pix2pix-style image-to-image generator.
"""

import keras
import numpy as np
from keras import layers, ops

from keras_layers.argument_checks import check_choice, check_positive_int
from keras_layers.recurrent_attentive_fusion import RecurrentAttentiveFusion
from keras_layers.word_encoder import WordEncoder

BATCH_NORM_MODES = ("batch_statistics_always", "standard")
TERMINATIONS = ("none", "gumbel")
ATTENTION_FORMS = ("additive", "bilinear")
# The encoder (released model): (filters as a multiple of ngf, strides,
# dilation rate) of each 3x3 convolution, in blocks.
ENCODER_BLOCKS = (
    ((1, 1, 1), (1, 2, 1)),
    ((2, 1, 1), (2, 2, 1)),
    ((4, 1, 1), (4, 1, 1), (4, 1, 1)),
    ((4, 1, 2), (4, 1, 2), (4, 1, 2)),
    ((4, 1, 2), (4, 1, 2), (4, 1, 2)),
    ((4, 1, 1), (4, 1, 1), (4, 1, 1)),
)
ENCODER_STRIDE = 4


@keras.saving.register_keras_serializable(package="lbie_flowers")
class TokenMask(keras.layers.Layer):
    """True for the real words of padded token ids (id 0 is padding)."""

    def call(self, inputs):
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="bool")


@keras.saving.register_keras_serializable(package="lbie_flowers")
class BatchStatisticsNormalization(keras.layers.Layer):
    """Batch normalization that always uses the batch's own statistics.

    y = gamma * (x - mean) / sqrt(var + epsilon) + beta, with mean and var
    over every axis but the channels, in training and at inference alike:
    the released flowers generator never switched its batch norm to moving
    statistics (DEVIATIONS.md point 7), so with its batch of 1 it acts as
    instance normalization. It keeps no moving statistics.

    Weights: `gamma` and `beta` (channels,).

    Args:
      epsilon: added to the variance.
      synchronized: whether the statistics are taken over the global batch
        under a tf.distribute strategy (`keras.ops.moments`, which then
        computes the variance as E[x^2] - E[x]^2, as Keras'
        BatchNormalization does); False takes them per replica, as Keras'
        BatchNormalization does by default.
    """

    def __init__(self, epsilon=1e-3, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or epsilon <= 0
        ):
            raise ValueError(
                f"`epsilon` must be a positive float; received "
                f"epsilon={epsilon!r}."
            )
        self.epsilon = float(epsilon)
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                "`inputs` must have rank >= 2 and a known channel "
                f"dimension; received shape {input_shape}."
            )
        channels = input_shape[-1]
        self.gamma = self.add_weight(
            name="gamma", shape=(channels,), initializer="ones"
        )
        self.beta = self.add_weight(
            name="beta", shape=(channels,), initializer="zeros"
        )

    def call(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        x = inputs
        if dtype in ("float16", "bfloat16"):
            x = ops.cast(x, "float32")
        axes = list(range(len(x.shape) - 1))
        mean, variance = ops.moments(
            x, axes, keepdims=True, synchronized=self.synchronized
        )
        gamma = ops.cast(self.gamma, x.dtype)
        beta = ops.cast(self.beta, x.dtype)
        y = (x - mean) * ops.rsqrt(variance + self.epsilon) * gamma + beta
        return ops.cast(y, dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"epsilon": self.epsilon, "synchronized": self.synchronized}
        )
        return config


def check_image_size(image_size, multiple, name="image_size"):
    """None, or a positive int divisible by `multiple`."""
    if image_size is None:
        return
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, (int, np.integer))
        or image_size <= 0
        or image_size % multiple
    ):
        raise ValueError(
            f"`{name}` must be None or a positive multiple of {multiple}; "
            f"received {name}={image_size!r}."
        )


def check_max_tokens(max_tokens):
    if max_tokens is not None:
        check_positive_int("max_tokens", max_tokens)


def check_text_settings(
    embedding_dim, lstm_units, attention_form, attention_units
):
    """ValueError naming the first bad text setting of a network with text
    (the generator's or the discriminator's)."""
    check_positive_int("embedding_dim", embedding_dim)
    check_positive_int("lstm_units", lstm_units)
    check_choice("attention_form", attention_form, ATTENTION_FORMS)
    if attention_form == "additive":
        check_positive_int("attention_units", attention_units)


def offset_seed(seed, offset):
    return None if seed is None else int(seed) + offset


def glorot(seed, offset):
    """A Glorot-uniform initializer seeded with `seed + offset`, if seeded."""
    if seed is None:
        return "glorot_uniform"
    return keras.initializers.GlorotUniform(seed=int(seed) + offset)


def encode_text(
    tokens,
    vocabulary_size,
    embedding_dim,
    word_vectors,
    train_embeddings,
    lstm_units,
    seed,
    name,
):
    """Word embedding + BiLSTM (released model) -> (memory U, word mask).

    The memory is every word's BiLSTM output (B, L, 2 * lstm_units);
    padding (id 0) is masked in the LSTM and in the attention.
    `train_embeddings=None` trains the embedding unless `word_vectors`
    is given, which is then frozen, as the release froze its word2vec.
    """
    if train_embeddings is None:
        train_embeddings = word_vectors is None
    memory = WordEncoder(
        lstm_units,
        vocabulary_size,
        embedding="learned" if train_embeddings else "frozen",
        embedding_dim=embedding_dim,
        embeddings_initializer=word_vectors,
        bidirectional=True,
        unit_forget_bias=True,
        return_sequences=True,
        mask_zero=True,
        seed=seed,
        name=name,
    )(tokens)
    mask = TokenMask(name=f"{name}_mask")(tokens)
    return memory, mask


def fusion_layer(
    units,
    attention_units,
    gate_bias,
    update_convention,
    seed,
    name,
    attention_form="additive",
    num_steps=1,
    termination="none",
    output_projection=False,
    temperature=1.0,
    straight_through=False,
    termination_initial_bias=0.0,
    termination_warmup_steps=0,
    termination_warmup_selection="last",
):
    """The flowers fusion: attention (the release's additive form, or the
    paper's bilinear one) and a per-pixel C-GRU whose reset gate multiplies
    the image state (DEVIATIONS.md points 3, 4)."""
    gumbel = termination == "gumbel"
    return RecurrentAttentiveFusion(
        units=units,
        num_steps=num_steps,
        attention_form=attention_form,
        attention_units=attention_units
        if attention_form == "additive"
        else None,
        kernel_size=1,
        output_projection=output_projection,
        reset_gate_target="state",
        gate_bias_initializer=float(gate_bias),
        candidate_activation="relu",
        update_convention=update_convention,
        termination="gumbel" if gumbel else "last",
        temperature=temperature,
        straight_through=straight_through,
        termination_initial_bias=termination_initial_bias,
        termination_warmup_steps=termination_warmup_steps,
        termination_warmup_selection=termination_warmup_selection,
        return_attention=True,
        return_stop_probabilities=gumbel,
        return_stop_step=gumbel,
        seed=seed,
        name=name,
    )


def _normalization(mode, synchronized, name):
    if mode == "batch_statistics_always":
        return BatchStatisticsNormalization(
            synchronized=synchronized, name=name
        )
    return layers.BatchNormalization(synchronized=synchronized, name=name)


def _conv_relu_norm(x, conv, mode, synchronized):
    x = conv(x)
    x = layers.ReLU(name=f"{conv.name}_relu")(x)
    return _normalization(mode, synchronized, f"{conv.name}_bn")(x)


def encode_image(lightness, ngf, batch_norm_mode, synchronized, seed):
    """The released encoder: 16 3x3 convolutions, each ReLU then BN.

    Blocks [ngf, ngf/2] [2ngf, 2ngf/2] [4ngf x3] [4ngf atrous 2 x3] x2
    [4ngf x3], where "/2" is a stride-2 convolution: the second conv of
    each of the first two blocks halves the map, as the second conv of
    Zhang et al.'s colorization blocks does (the network the paper's
    section 4.3 says its encoder is "similar to"), for the overall stride
    of 4 of the release (256 -> 64 x 64 x 4ngf). The paper counts a
    "15-layer" encoder; the released blocks hold 16 convolutions.
    """
    x = lightness
    offset = 0
    for block, convolutions in enumerate(ENCODER_BLOCKS, start=1):
        for index, (multiple, strides, dilation) in enumerate(
            convolutions, start=1
        ):
            conv = layers.Conv2D(
                multiple * ngf,
                3,
                strides=strides,
                dilation_rate=dilation,
                padding="same",
                kernel_initializer=glorot(seed, offset),
                name=f"conv{block}_{index}",
            )
            x = _conv_relu_norm(x, conv, batch_norm_mode, synchronized)
            offset += 1
    return x


def decode(features, ngf, batch_norm_mode, synchronized, seed):
    """Two 4x4 stride-2 deconvolutions, each followed by two 3x3
    convolutions (section 4.3), then a 3x3 convolution to tanh ab."""
    x = features
    offset = 100
    for index, multiple in enumerate((2, 1), start=1):
        deconv = layers.Conv2DTranspose(
            multiple * ngf,
            4,
            strides=2,
            padding="same",
            kernel_initializer=glorot(seed, offset),
            name=f"deconv{index}",
        )
        x = _conv_relu_norm(x, deconv, batch_norm_mode, synchronized)
        for conv_index in (1, 2):
            conv = layers.Conv2D(
                multiple * ngf,
                3,
                padding="same",
                kernel_initializer=glorot(seed, offset + conv_index),
                name=f"deconv{index}_conv{conv_index}",
            )
            x = _conv_relu_norm(x, conv, batch_norm_mode, synchronized)
        offset += 10
    return layers.Conv2D(
        2,
        3,
        padding="same",
        activation="tanh",
        kernel_initializer=glorot(seed, offset),
        name="ab",
    )(x)


def _warmup_steps(termination_warmup, training_steps):
    if (
        isinstance(termination_warmup, bool)
        or not isinstance(termination_warmup, (int, float))
        or not 0.0 <= termination_warmup < 1.0
    ):
        raise ValueError(
            "`termination_warmup` must be a fraction of the training in "
            f"[0, 1); received termination_warmup={termination_warmup!r}."
        )
    if training_steps is None:
        return 0
    return int(round(termination_warmup * training_steps))


def _to_python(value):
    """ConfigDict values (nested) as plain Python for layer configs."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def build_generator(
    vocabulary_size,
    image_size=None,
    max_tokens=None,
    ngf=32,
    embedding_dim=300,
    word_vectors=None,
    train_embeddings=None,
    lstm_units=64,
    attention_form="additive",
    attention_units=128,
    num_steps=1,
    termination="none",
    output_projection=None,
    gate_bias=1.0,
    update_convention="original",
    temperature=1.0,
    straight_through=False,
    termination_initial_bias=0.0,
    termination_warmup=0.0,
    termination_warmup_selection="last",
    training_steps=None,
    batch_norm_mode="batch_statistics_always",
    batch_norm_synchronized=False,
    text=True,
    seed=None,
    name=None,
):
    """Builds the flowers generator; the defaults are the released model.

    image: `encode_image` (16 3x3 convs, ReLU then batch norm, stride 4)
    -> (H/4, W/4, 4 ngf); text: a word embedding (300-d; the release's
    frozen word2vec when `word_vectors` is given) and a BiLSTM of 64 units
    per direction over every word, padding masked; fusion: T steps of
    additive attention (128 units, softmax over the words) and a per-pixel
    C-GRU of 4 ngf units, gate bias 1.0, reset gate on the image state
    (`RecurrentAttentiveFusion`); decoder: `decode`, tanh ab at H x W.

    Args:
      vocabulary_size: token ids, 0 being padding.
      image_size: H = W, a multiple of 4; None accepts any multiple of 4.
      max_tokens: L, token ids per caption; None accepts any length.
      ngf: the encoder's base width (32; the fusion has 4 ngf = 128
        units, the paper's "GRU cells 128 units").
      embedding_dim: word vector size (300).
      word_vectors: None (a learned embedding) or a float array
        (vocabulary_size, embedding_dim) of pretrained vectors (the
        release's word2vec), saved with the weights, not the config.
      train_embeddings: whether the embedding trains; None: only when
        `word_vectors` is None (the release froze its word2vec).
      lstm_units: BiLSTM units per direction (64 in the release; the
        paper prints "512"). Unlike the release's, the BiLSTM is trained
        with the model, not pretrained and frozen.
      attention_form: "additive" (the release: v^T tanh(W s + U u), a
        hidden layer of `attention_units`) or "bilinear" (the paper's
        section 3: s^T W u), see `TextAttention`; both softmax over the
        words.
      attention_units: hidden size of the additive attention (128); the
        bilinear form has none.
      num_steps: T, fusion steps (1: the paper's and the release's
        "maximum length of the spatial RNN is 1").
      termination: "none" (the last step's output; the only choice at
        T = 1) or "gumbel" (the paper's termination gate, section 3).
        The released code's mixture gate (`MixtureTermination`) is not
        offered: it is an exact likelihood over stopping steps, which a
        GAN + L1 objective does not have, and the flowers release had one
        step.
      output_projection: whether the C-GRU has the paper's output
        convolution W7; None: only for T > 1 (the release has none).
      gate_bias: initial bias of the C-GRU gates (1.0 in the release).
      update_convention: "original" (release: the bias is on the gate
        that keeps the state) or "paper", see `ConvGRUCell`.
      temperature, straight_through, termination_initial_bias,
      termination_warmup_selection: the Gumbel gate's settings, see
        `GumbelTerminationGate` (gumbel only).
      termination_warmup: fraction of `training_steps` before the gate's
        selection starts (0: none, the paper).
      training_steps: training batches, or None (no warm-up).
      batch_norm_mode: "batch_statistics_always" (default, the release:
        `BatchStatisticsNormalization`, batch statistics at inference too)
        or "standard" (Keras' BatchNormalization, moving statistics at
        inference).
      batch_norm_synchronized: whether batch statistics are taken over
        the global batch under tf.distribute (False: per replica).
      text: False builds the no-text baseline: the same encoder and
        decoder, encoder output decoded directly; "tokens" stays an
        (unused) input so that both models take the same inputs.
      seed: optional int making the initial weights (and the Gumbel
        noise) reproducible.
      name: the model's name; None derives one.

    Returns:
      A keras.Model from {"lightness" float32 (B, H, W, 1), L / 50 - 1;
      "tokens" int32 (B, L), 0 = padding} to {"ab" float32 (B, H, W, 2)
      in (-1, 1), ab / 110} plus, with text, "attention_weights"
      (B, H/4 * W/4, L, T) and, with the Gumbel gate, "stop_probabilities"
      (B, H/4, W/4, T) and "stop_step" (B, H/4, W/4) int32, the 0-based
      step each region keeps.
    """
    check_positive_int("vocabulary_size", vocabulary_size)
    check_image_size(image_size, ENCODER_STRIDE)
    check_max_tokens(max_tokens)
    check_positive_int("ngf", ngf)
    check_positive_int("num_steps", num_steps)
    check_choice("termination", termination, TERMINATIONS)
    check_choice("batch_norm_mode", batch_norm_mode, BATCH_NORM_MODES)
    if text:
        check_text_settings(
            embedding_dim, lstm_units, attention_form, attention_units
        )
    elif num_steps != 1 or termination != "none":
        raise ValueError(
            "The no-text baseline has no fusion: it needs num_steps=1 and "
            f"termination='none'; received num_steps={num_steps!r}, "
            f"termination={termination!r}."
        )
    warmup_steps = _warmup_steps(termination_warmup, training_steps)
    if output_projection is None:
        output_projection = num_steps > 1

    lightness = keras.Input((image_size, image_size, 1), name="lightness")
    tokens = keras.Input((max_tokens,), dtype="int32", name="tokens")
    features = encode_image(
        lightness, ngf, batch_norm_mode, batch_norm_synchronized, seed
    )
    outputs = {}
    if text:
        memory, mask = encode_text(
            tokens,
            vocabulary_size,
            embedding_dim,
            word_vectors,
            train_embeddings,
            lstm_units,
            offset_seed(seed, 1000),
            "text_encoder",
        )
        fusion = fusion_layer(
            4 * ngf,
            attention_units,
            gate_bias,
            update_convention,
            offset_seed(seed, 2000),
            "fusion",
            attention_form=attention_form,
            num_steps=num_steps,
            termination=termination,
            output_projection=bool(output_projection),
            temperature=_to_python(temperature),
            straight_through=straight_through,
            termination_initial_bias=termination_initial_bias,
            termination_warmup_steps=warmup_steps,
            termination_warmup_selection=termination_warmup_selection,
        )
        fused = fusion(features, memory, mask=mask)
        features = fused["fused"]
        outputs["attention_weights"] = fused["attention_weights"]
        if termination == "gumbel":
            outputs["stop_probabilities"] = fused["stop_probabilities"]
            outputs["stop_step"] = fused["stop_step"]
    outputs["ab"] = decode(
        features, ngf, batch_norm_mode, batch_norm_synchronized, seed
    )
    if name is None:
        name = (
            f"flowers_generator_t{num_steps}"
            if text
            else "flowers_generator_no_text"
        )
    return keras.Model(
        {"lightness": lightness, "tokens": tokens}, outputs, name=name
    )
