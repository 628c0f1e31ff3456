"""The paper's ReferIt model (section 4.2) as a functional Keras model."""

import keras
from keras import layers, ops

from keras_layers.bilinear_upsampling import BilinearConv2DTranspose
from keras_layers.recurrent_attentive_fusion import RecurrentAttentiveFusion
from keras_layers.word_encoder import WordEncoder
from lbie_tf.referit import hu_baseline

TERMINATIONS = ("gumbel", "last")
FEATURE_LAYERS = ("pool5", "fc7", "fc8")


@keras.saving.register_keras_serializable(package="lbie_referit")
class TokenMask(keras.layers.Layer):
    """True for the real words of left-padded token ids (id 0 is <pad>)."""

    def call(self, inputs):
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="bool")


def build_lbie_model(
    image_size=512,
    max_tokens=20,
    vocabulary_size=8803,
    embedding_dim=1000,
    lstm_units=1024,
    feature_layer="fc8",
    spatial_features=False,
    fusion_units=1024,
    num_steps=3,
    attention_form="additive",
    attention_units=512,
    fusion_kernel_size=1,
    termination="gumbel",
    temperature=1.0,
    straight_through=False,
    termination_initial_bias=0.0,
    termination_warmup_steps=0,
    termination_warmup_selection="last",
    classifier_units=500,
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
    """Builds the section 4.2 model.

    image: VGG-16 on the S x S image (S = 512: a 16 x 16 map), read at
    `feature_layer`, optionally with Hu et al.'s 8-channel spatial map
    (`hu_baseline.SpatialCoordinates`) appended, then a 1x1 convolution
    with ReLU to the fusion's `fusion_units` channels (S^0 = V needs as
    many channels as the C-GRU state; the paper puts a ReLU on each
    convolution); text: a learned word embedding and an LSTM of 1,024 units
    whose every word's output is the memory U, padding masked (left-padded
    ids, 0 = <pad>); fusion: Algorithm 1 (`RecurrentAttentiveFusion`) with
    T = 3 steps, attention of 512 units, a C-GRU of 1,024 units with the
    output convolution W7 (for T > 1), and the paper's Gumbel termination
    gate or the last step's output; classifier and upsampling as in
    section 4.1: a 1x1 convolution with ReLU, a 1x1 convolution to one
    logit and a bilinear-initialised transposed convolution (kernel 64,
    stride 32) to S x S. The paper's "L2-normalization ... to the
    parameters" is weight decay, which belongs to the optimizer.

    Choices where section 4.2 is silent: the
    feature map is fc8, as in Hu et al.'s model that the paper compares
    with; "attention with 512 units" is read as additive attention with a
    hidden size of 512 (the bilinear form of section 3 has no such size);
    the C-GRU is 1x1, since the VGG-16 cells already see most of the image;
    no spatial map by default; the classifier has Hu et al.'s 500 hidden
    units and one sigmoid logit, which is the two-class softmax of section
    3 with one logit fixed at 0.

    Args:
      image_size: S, a multiple of 32 (512 in the paper).
      max_tokens: L, token ids per expression (20).
      vocabulary_size: token ids (8,803 for ReferIt's vocabulary).
      embedding_dim: word embedding size (not given; Hu et al.'s 1000).
      lstm_units: the text LSTM (1,024).
      feature_layer: the backbone output fused, "pool5", "fc7" or "fc8".
      spatial_features: whether to append Hu et al.'s spatial map to it.
      fusion_units: the C-GRU state (1,024).
      num_steps: T (3).
      attention_form: "additive" (hidden size `attention_units`) or
        "bilinear" (section 3's s^T W u, no hidden size), see
        `TextAttention`.
      attention_units: 512; used by the additive form only.
      fusion_kernel_size: the C-GRU's convolution size.
      termination: "gumbel" (the paper's gate, section 3) or "last" (the
        last step's output).
      temperature, straight_through, termination_initial_bias,
      termination_warmup_steps, termination_warmup_selection: the Gumbel
        gate's settings, see `GumbelTerminationGate` (gumbel only).
      classifier_units: hidden 1x1 convolution of the classifier.
      filters_scale, fc_units, fc8_units, input_scale, freeze_convolutions:
        the backbone (`vgg16.VGG16Backbone`); the defaults are VGG-16 with
        the convolutions frozen, as Hu et al. train it.
      bilinear_variant: "hu" or "fcn", see `BilinearConv2DTranspose`.
      text_blind: replace the memory U by a learned constant (L x 1,024,
        `hu_baseline.ConstantText`, no mask), so the model cannot read the
        expression.
      vgg16_weights, vgg16_npz: see `vgg16.load_vgg16_weights`.
      seed: optional int making the initial weights and the Gumbel noise
        reproducible.

    Returns:
      A keras.Model from {"image" float32 (B, S, S, 3), RGB minus
      `vgg16.RGB_MEAN`; "expression" int32 (B, L)} to {"logits" float32
      (B, S, S, 1), "attention_weights" (B, M*N, L, T) over the M x N =
      (S/32)^2 regions} plus, with the Gumbel gate, "stop_probabilities"
      (B, M, N, T) and "stop_step" (B, M, N) int32, the 0-based step each
      region keeps.
    """
    hu_baseline.check_image_size(image_size)
    if termination not in TERMINATIONS:
        raise ValueError(
            f"`termination` must be one of {TERMINATIONS}; received "
            f"termination={termination!r}."
        )
    if feature_layer not in FEATURE_LAYERS:
        raise ValueError(
            f"`feature_layer` must be one of {FEATURE_LAYERS}; received "
            f"feature_layer={feature_layer!r}."
        )
    image = keras.Input((image_size, image_size, 3), name="image")
    expression = keras.Input((max_tokens,), dtype="int32", name="expression")

    backbone = hu_baseline.build_backbone(
        image_size,
        feature_layer,
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
    if spatial_features:
        visual = layers.Concatenate(name="visual_and_spatial")(
            [visual, hu_baseline.SpatialCoordinates(name="spatial")(visual)]
        )
    visual = layers.Conv2D(
        fusion_units,
        1,
        activation="relu",
        kernel_initializer=_glorot(seed, 300),
        name="image_projection",
    )(visual)

    if text_blind:
        memory = hu_baseline.ConstantText(
            (max_tokens, lstm_units),
            seed=hu_baseline.offset_seed(seed, 100),
            name="constant_text",
        )(expression)
        mask = None
    else:
        memory = WordEncoder(
            lstm_units,
            vocabulary_size,
            embedding="learned",
            embedding_dim=embedding_dim,
            return_sequences=True,
            mask_zero=True,
            seed=hu_baseline.offset_seed(seed, 100),
            name="text_encoder",
        )(expression)
        mask = TokenMask(name="token_mask")(expression)

    gumbel = termination == "gumbel"
    fusion = RecurrentAttentiveFusion(
        units=fusion_units,
        num_steps=num_steps,
        attention_form=attention_form,
        attention_units=(
            attention_units if attention_form == "additive" else None
        ),
        kernel_size=fusion_kernel_size,
        output_projection=num_steps > 1,
        reset_gate_target="state",
        termination=termination,
        temperature=_to_python(temperature) if gumbel else 1.0,
        straight_through=straight_through,
        termination_initial_bias=termination_initial_bias,
        termination_warmup_steps=termination_warmup_steps,
        termination_warmup_selection=termination_warmup_selection,
        return_attention=True,
        return_stop_probabilities=gumbel,
        return_stop_step=gumbel,
        seed=hu_baseline.offset_seed(seed, 400),
        name="fusion",
    )
    fusion_outputs = fusion(visual, memory, mask=mask)
    outputs = {"attention_weights": fusion_outputs["attention_weights"]}
    if gumbel:
        outputs["stop_probabilities"] = fusion_outputs["stop_probabilities"]
        outputs["stop_step"] = fusion_outputs["stop_step"]

    x = layers.Conv2D(
        classifier_units,
        1,
        activation="relu",
        kernel_initializer=_glorot(seed, 500),
        name="classifier_hidden",
    )(fusion_outputs["fused"])
    x = layers.Conv2D(
        1, 1, kernel_initializer=_glorot(seed, 501), name="classifier"
    )(x)
    logits = BilinearConv2DTranspose(
        1,
        hu_baseline.UPSAMPLING_KERNEL_SIZE,
        hu_baseline.FEATURE_STRIDE,
        variant=bilinear_variant,
        use_bias=False,
        padding="same",
        name="upsampling",
    )(x)
    outputs["logits"] = layers.Identity(name="logits")(logits)
    suffix = "_text_blind" if text_blind else ""
    return keras.Model(
        {"image": image, "expression": expression},
        outputs,
        name=f"referit_lbie_t{num_steps}{suffix}",
    )


def _glorot(seed, offset):
    if seed is None:
        return "glorot_uniform"
    return keras.initializers.GlorotUniform(seed=int(seed) + offset)


def _to_python(value):
    """ConfigDict values (nested) as plain Python for layer configs."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value
