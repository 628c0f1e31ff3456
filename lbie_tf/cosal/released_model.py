"""The released code's CoSaL model (DEVIATIONS.md points 1-5) in Keras."""

import keras
from keras import layers, ops

from keras_layers.bilinear_upsampling import BilinearConv2DTranspose
from keras_layers.hierarchical_text_encoder import HierarchicalTextEncoder
from keras_layers.mixture_termination import MixtureTermination
from keras_layers.recurrent_attentive_fusion import RecurrentAttentiveFusion
from lbie_tf.cosal.paper_model import concatenate_last_text_vector


def encode_image(image, ngf):
    """3x3 convs to a 3 x 3 x 8ngf map (stride 16).

    Stages [ngf, ngf/2] [2ngf, 2ngf/2] [4ngf x2, 4ngf/2] [8ngf x2, 8ngf/2]
    ("/2": stride 2); every conv is followed by ReLU, and each stage's last
    (strided) conv by batch norm + ReLU.
    """
    x = layers.Rescaling(1.0 / 255.0, offset=-0.5, name="normalize")(image)
    stages = ((ngf, ngf), (2 * ngf,) * 2, (4 * ngf,) * 3, (8 * ngf,) * 3)
    for stage, filters_list in enumerate(stages, start=1):
        for index, filters in enumerate(filters_list, start=1):
            last = index == len(filters_list)
            name = f"encoder{stage}_{index}"
            x = layers.Conv2D(
                filters,
                3,
                strides=2 if last else 1,
                padding="same",
                use_bias=not last,
                name=name,
            )(x)
            if last:
                x = layers.BatchNormalization(name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def build_decoder(input_shape, ngf, output_channels, batch_norm=True):
    """The shared decoder: four 4x4 stride-2 deconvs with 3x3 convs between.

    3 x 3 -> 48 x 48; deconvs 8ngf, 4ngf, 2ngf, ngf, each followed by batch
    norm + ReLU (`batch_norm=False`: a bias + ReLU instead, a diagnostic
    variant) and a 3x3 conv + ReLU; a final 3x3 conv to `output_channels`
    (termination + classes for T > 1).
    """
    inputs = keras.Input(input_shape, name="decoder_input")
    x = inputs
    for index, filters in enumerate((8 * ngf, 4 * ngf, 2 * ngf, ngf), start=1):
        x = layers.Conv2DTranspose(
            filters,
            4,
            strides=2,
            padding="same",
            use_bias=not batch_norm,
            name=f"deconv{index}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"deconv{index}_bn")(x)
        x = layers.ReLU(name=f"deconv{index}_relu")(x)
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"conv{index}"
        )(x)
    outputs = layers.Conv2D(
        output_channels, 3, padding="same", name="output_conv"
    )(x)
    return keras.Model(inputs, outputs, name="decoder")


def build_classifier_upsampling(input_shape, units, output_channels, scale):
    """The paper's head (section 4.1) in place of the deep decoder.

    Two 1x1 convs (`units` + ReLU, then `output_channels`) and a
    bilinear-initialised deconvolution (kernel 2 * scale, stride scale):
    3 x 3 -> 48 x 48 for scale 16.
    """
    inputs = keras.Input(input_shape, name="decoder_input")
    x = layers.Conv2D(units, 1, activation="relu", name="classifier_hidden")(
        inputs
    )
    x = layers.Conv2D(output_channels, 1, name="classifier")(x)
    outputs = BilinearConv2DTranspose(
        output_channels, 2 * scale, scale, padding="same", name="upsampling"
    )(x)
    return keras.Model(inputs, outputs, name="decoder")


def build_original_model(model_config):
    """Builds the released code's CoSaL model.

    image: the 3 x 3 x 128 encoder; text: one-hot -> word LSTM(128) ->
    sentence LSTM(128), forget bias 0; fusion: T steps of the per-pixel
    cell (kernel 1, no W7, scaled-dot attention without softmax, gate bias
    0.5, reset gate on the attended text), weights shared over steps; the
    shared decoder runs on every step's state at once (the steps are
    stacked into the batch, so batch norm sees B*T samples):
    `model_config.decoder` "deconv" is the released code's,
    "classifier_upsampling" the paper's head (1x1 convs to
    `classifier_units` and the classes, bilinear deconvolution). T > 1:
    the decoder outputs 1 + num_classes channels and the mixture
    termination picks each pixel's step; T = 1: num_classes channels.
    Without attention (T = 1) the image features are concatenated with the
    last text vector.

    Returns:
      A keras.Model from {"image", "sentences"} to {"logits" (B, S, S, C)},
      plus "attention_weights" (B, 9, 9, T) with attention and, for T > 1,
      "step_logits" (B, T, S, S, 1 + C) (the mixture loss's input) and
      "stop_step" (B, S, S).
    """
    size = model_config.image_size
    ngf = model_config.ngf
    num_steps = model_config.num_steps
    num_classes = model_config.num_classes
    seed = model_config.seed
    image = keras.Input((size, size, 3), dtype="uint8", name="image")
    sentences = keras.Input((9, 3), dtype="int32", name="sentences")

    image_features = encode_image(image, ngf)
    text_features = HierarchicalTextEncoder(
        word_units=model_config.word_units,
        sentence_units=model_config.sentence_units,
        vocabulary_size=model_config.vocabulary_size,
        embedding="one_hot",
        word_bidirectional=model_config.word_bidirectional,
        unit_forget_bias=model_config.unit_forget_bias,
        seed=seed,
        name="text_encoder",
    )(sentences)

    outputs = {}
    if model_config.attention:
        fusion = RecurrentAttentiveFusion(
            units=8 * ngf,
            num_steps=num_steps,
            attention_form=model_config.attention_form,
            kernel_size=model_config.fusion_kernel_size,
            output_projection=False,
            reset_gate_target="input",
            gate_bias_initializer=model_config.gate_bias,
            candidate_activation="relu",
            update_convention="original",
            termination="none" if num_steps > 1 else "last",
            return_sequences=True,
            return_attention=True,
            seed=seed,
            name="fusion",
        )
        fusion_outputs = fusion(image_features, text_features)
        step_states = fusion_outputs["step_outputs"]
        outputs["attention_weights"] = fusion_outputs["attention_weights"]
    else:
        if num_steps != 1:
            raise ValueError(
                "The no-attention baseline has one step: `num_steps` must be "
                f"1 when `attention` is False, received: {num_steps}."
            )
        fused = concatenate_last_text_vector(image_features, text_features)
        step_states = fused[:, None]

    _, _, rows, cols, channels = step_states.shape
    output_channels = num_classes + 1 if num_steps > 1 else num_classes
    # A config without the key predates the switch: the released decoder.
    if model_config.decoder == "deconv":
        decoder = build_decoder((rows, cols, channels), ngf, output_channels)
    else:
        decoder = build_classifier_upsampling(
            (rows, cols, channels),
            model_config.classifier_units,
            output_channels,
            size // rows,
        )
    # One decoder pass over all steps: (B, T, ...) -> (B * T, ...) and back.
    decoded = decoder(ops.reshape(step_states, (-1, rows, cols, channels)))
    if num_steps > 1:
        step_logits = ops.reshape(
            decoded, (-1, num_steps, size, size, output_channels)
        )
        step_logits = layers.Identity(name="step_logits")(step_logits)
        mixture = MixtureTermination(name="mixture_termination")(step_logits)
        outputs["step_logits"] = step_logits
        outputs["stop_step"] = layers.Identity(name="stop_step")(
            mixture["stop_step"]
        )
        logits = mixture["logits"]
    else:
        logits = decoded
    outputs["logits"] = layers.Identity(name="logits")(logits)
    return keras.Model(
        {"image": image, "sentences": sentences},
        outputs,
        name=f"cosal_original_t{num_steps}",
    )
