"""The paper's small CoSaL model (section 4.1) as a functional Keras model."""

import keras
from keras import layers, ops

from keras_layers.bilinear_upsampling import BilinearConv2DTranspose
from keras_layers.hierarchical_text_encoder import HierarchicalTextEncoder
from keras_layers.recurrent_attentive_fusion import RecurrentAttentiveFusion
from lbie_tf.core import errors


def concatenate_last_text_vector(image_features, text_features):
    """The T = 1 no-attention baseline's fusion (paper section 4.1).

    Concatenates every region's image features with the last vector of the
    sentence LSTM, broadcast over the regions.
    """
    last = text_features[:, -1, :][:, None, None, :]
    broadcast = last * ops.ones_like(image_features[..., :1])
    return ops.concatenate([image_features, broadcast], axis=-1)


def encode_image(image, model_config):
    """Six 3x3 convs (4, 4, 8, 8, 16, 16), ReLU, 2x2 max pool after two."""
    x = layers.Rescaling(1.0 / 255.0, offset=-0.5, name="normalize")(image)
    for index, filters in enumerate(model_config.conv_filters):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=not model_config.batch_norm,
            name=f"conv{index + 1}",
        )(x)
        if model_config.batch_norm:
            x = layers.BatchNormalization(name=f"conv{index + 1}_bn")(x)
        x = layers.ReLU(name=f"conv{index + 1}_relu")(x)
        if index % 2 == 1:
            x = layers.MaxPooling2D(2, name=f"pool{index // 2 + 1}")(x)
    return x


def warmup_steps(model_config, training_steps):
    """Training batches of the gate warm-up: `termination_warmup` (a
    fraction of the training) times `training_steps`, 0 without them."""
    fraction = model_config.termination_warmup
    if isinstance(fraction, bool) or not 0.0 <= fraction < 1.0:
        raise errors.UsageError(
            "`model.termination_warmup` must be a fraction of the "
            f"training in [0, 1) (0 turns the gate warm-up off, the default "
            f"is 1/3), received: {fraction!r}."
        )
    if training_steps is None:
        return 0
    return int(round(fraction * training_steps))


def build_paper_model(model_config, training_steps=None):
    """Builds the section 4.1 model.

    image: 48 x 48 -> six 3x3 convs with max pooling -> 6 x 6 x 16;
    text: a BiLSTM (16 units per direction, shared over the 9 sentences) per
    sentence, then a sentence LSTM of 16 units -> 9 x 16 memory;
    fusion: T steps of bilinear attention + C-GRU (16 units, W7 output
    conv) with the Gumbel termination gate for T > 1; T = 1 without
    attention concatenates the image features with the last text vector;
    classifier: 1x1 convs 16 -> num_classes; upsampling: a bilinear-
    initialised transposed conv, kernel 16, stride 8.

    `training_steps` (training batches, or None) sizes the gate warm-up,
    see `warmup_steps`.

    Returns:
      A keras.Model from {"image" uint8 (B, S, S, 3), "sentences" int32
      (B, 9, 3)} to {"logits" (B, S, S, num_classes)}, plus
      "attention_weights" (B, 36, 9, T) with attention and, with the Gumbel
      gate (T > 1), "stop_probabilities" (B, 6, 6, T) and "stop_step"
      (B, 6, 6) int32, the step each region keeps (the released family's
      output of the same name gives it per pixel).
    """
    size = model_config.image_size
    seed = model_config.seed
    image = keras.Input((size, size, 3), dtype="uint8", name="image")
    sentences = keras.Input((9, 3), dtype="int32", name="sentences")

    image_features = encode_image(image, model_config)
    text_features = HierarchicalTextEncoder(
        word_units=model_config.word_units,
        sentence_units=model_config.sentence_units,
        vocabulary_size=model_config.vocabulary_size,
        embedding="one_hot",
        word_bidirectional=True,
        unit_forget_bias=True,
        seed=seed,
        name="text_encoder",
    )(sentences)

    outputs = {}
    if model_config.attention:
        num_steps = model_config.num_steps
        gumbel = model_config.termination == "gumbel"
        fusion = RecurrentAttentiveFusion(
            units=model_config.fusion_units,
            num_steps=num_steps,
            attention_form=model_config.attention_form,
            kernel_size=model_config.fusion_kernel_size,
            output_projection=model_config.output_projection
            and model_config.num_steps > 1,
            reset_gate_target="state",
            termination=model_config.termination,
            temperature=_to_python(model_config.temperature),
            straight_through=model_config.straight_through,
            termination_initial_bias=model_config.termination_initial_bias,
            termination_warmup_steps=warmup_steps(model_config, training_steps),
            termination_warmup_selection=model_config.termination_warmup_selection,
            return_attention=True,
            return_stop_probabilities=gumbel,
            return_stop_step=gumbel,
            seed=seed,
            name="fusion",
        )
        fusion_outputs = fusion(image_features, text_features)
        fused = fusion_outputs["fused"]
        outputs["attention_weights"] = fusion_outputs["attention_weights"]
        if gumbel:
            outputs["stop_probabilities"] = fusion_outputs["stop_probabilities"]
            outputs["stop_step"] = fusion_outputs["stop_step"]
    else:
        if model_config.num_steps != 1:
            raise ValueError(
                "The no-attention baseline has one step: `num_steps` must be "
                f"1 when `attention` is False, received: "
                f"{model_config.num_steps}."
            )
        fused = concatenate_last_text_vector(image_features, text_features)

    x = layers.Conv2D(
        model_config.classifier_units,
        1,
        activation="relu",
        name="classifier_hidden",
    )(fused)
    x = layers.Conv2D(model_config.num_classes, 1, name="classifier")(x)
    logits = BilinearConv2DTranspose(
        model_config.num_classes,
        model_config.upsampling_kernel_size,
        model_config.upsampling_strides,
        variant=model_config.bilinear_variant,
        padding="same",
        name="upsampling",
    )(x)
    outputs["logits"] = layers.Identity(name="logits")(logits)
    return keras.Model(
        {"image": image, "sentences": sentences},
        outputs,
        name=f"cosal_paper_t{model_config.num_steps}",
    )


def _to_python(value):
    """ConfigDict values (nested) as plain Python for layer configs."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value
