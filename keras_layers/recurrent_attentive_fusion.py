"""The paper's recurrent attentive fusion module (section 3, Algorithm 1)."""

import keras
from keras import ops

from keras_layers.conv_gru import ConvGRUCell, _check_seed
from keras_layers.gumbel_termination_gate import GumbelTerminationGate
from keras_layers.temperature_schedules import serialize_temperature
from keras_layers.text_attention import TextAttention

_ATTENTION_FORMS = ("bilinear", "scaled_dot", "additive")
_TERMINATIONS = ("gumbel", "last", "none")


def _offset_seed(seed, offset):
    return None if seed is None else seed + offset


@keras.saving.register_keras_serializable(package="lbie")
class RecurrentAttentiveFusion(keras.layers.Layer):
    """Fuses text into an image feature map: Algorithm 1 of the paper.

    With V the image feature map and U the text features:

        S^0 = V
        for t = 0 .. T-1:
            U_hat^t, a^t = TextAttention(S^t, U, mask)
            O_hat^t, S^{t+1} = ConvGRUCell(U_hat^t, S^t)

    The attention, cell and gate weights are shared over the T steps. The
    fused map depends on `termination`:

    - "gumbel" (paper): a `GumbelTerminationGate` reads S^{t+1} (the state
      after step t, as in Algorithm 1, line "Sample tau^{t+1}") and picks
      or mixes the step outputs O_hat^t per region; a region that never
      stops uses the last step.
    - "last": the last step's output O_hat^{T-1}.
    - "none": also O_hat^{T-1}, for models that decode every step themselves
      (the released code) and read `step_outputs`.

    With T = 1 the layer is a single attention + cell step.

    Args:
      units: channels D of the image features, the state and the outputs.
      num_steps: T, >= 1.
      attention_form: "bilinear" (paper), "scaled_dot" (CoSaL code) or
        "additive" (flowers code); see `TextAttention`.
      attention_units: hidden size of the additive attention (required for
        it, None for the other forms).
      kernel_size, output_projection, reset_gate_target,
      gate_bias_initializer, candidate_activation, update_convention: passed
        to `ConvGRUCell`.
      termination: "gumbel", "last" or "none", see above.
      temperature: Gumbel-softmax temperature or schedule (gumbel only).
      straight_through: hard Gumbel forward pass (gumbel only).
      termination_initial_bias: the termination gate's initial bias
        (gumbel only), see `GumbelTerminationGate`.
      termination_warmup_steps: training batches before the gate's Gumbel
        selection starts (gumbel only), see `GumbelTerminationGate`.
      termination_warmup_selection: "last" or "uniform", see
        `GumbelTerminationGate`.
      return_sequences: whether to return the step outputs.
      return_attention: whether to return the attention weights.
      return_stop_probabilities: whether to return the stop distribution
        beta (requires termination="gumbel").
      return_stop_step: whether to return the step each region keeps, the
        gate's own decision (requires termination="gumbel"); off by
        default, so that configs saved before the flag existed load
        unchanged.
      seed: optional int seeding the initializers and the Gumbel noise.

    Call arguments:
      image_features: (B, H, W, units) map V.
      text_features: (B, L, K) text features U.
      mask: optional (B, L) boolean tensor, True for real words.
      training: whether the gate samples (gumbel) or decides.

    Returns:
      The fused map (B, H, W, units) when no `return_*` flag is set; else a
      dict with "fused" and, as requested, "step_outputs" (B, T, H, W,
      units), "attention_weights" (B, H*W, L, T), "stop_probabilities"
      (B, H, W, T) and "stop_step" (B, H, W) int32 (0-based; see
      `GumbelTerminationGate`).
    """

    def __init__(
        self,
        units,
        num_steps=4,
        attention_form="bilinear",
        attention_units=None,
        kernel_size=1,
        output_projection=True,
        reset_gate_target="state",
        gate_bias_initializer=0.0,
        candidate_activation="relu",
        update_convention="paper",
        termination="gumbel",
        temperature=1.0,
        straight_through=False,
        termination_initial_bias=0.0,
        termination_warmup_steps=0,
        termination_warmup_selection="last",
        return_sequences=False,
        return_attention=False,
        return_stop_probabilities=False,
        return_stop_step=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(
                f"`units` must be a positive int. Received: units={units!r}"
            )
        if (
            isinstance(num_steps, bool)
            or not isinstance(num_steps, int)
            or num_steps < 1
        ):
            raise ValueError(
                "`num_steps` must be an int >= 1. "
                f"Received: num_steps={num_steps!r}"
            )
        if attention_form not in _ATTENTION_FORMS:
            raise ValueError(
                f"`attention_form` must be one of {_ATTENTION_FORMS}. "
                f"Received: attention_form={attention_form!r}"
            )
        if attention_form == "additive" and attention_units is None:
            raise ValueError(
                "`attention_units` must be a positive int for "
                "attention_form='additive'. "
                f"Received: attention_units={attention_units!r}"
            )
        if attention_form != "additive" and attention_units is not None:
            raise ValueError(
                "`attention_units` is only used by attention_form='additive' "
                f"and must be None for attention_form={attention_form!r}. "
                f"Received: attention_units={attention_units!r}"
            )
        if termination not in _TERMINATIONS:
            raise ValueError(
                f"`termination` must be one of {_TERMINATIONS}. "
                f"Received: termination={termination!r}"
            )
        for flag, value in (
            ("return_stop_probabilities", return_stop_probabilities),
            ("return_stop_step", return_stop_step),
        ):
            if value and termination != "gumbel":
                raise ValueError(
                    f"`{flag}=True` requires termination='gumbel'. "
                    f"Received: termination={termination!r}"
                )
        _check_seed(seed)
        self.units = units
        self.num_steps = num_steps
        self.attention_form = attention_form
        self.attention_units = attention_units
        self.kernel_size = kernel_size
        self.output_projection = bool(output_projection)
        self.reset_gate_target = reset_gate_target
        self.gate_bias_initializer = gate_bias_initializer
        self.candidate_activation = candidate_activation
        self.update_convention = update_convention
        self.termination = termination
        self.temperature = temperature
        self.straight_through = bool(straight_through)
        self.termination_initial_bias = termination_initial_bias
        self.termination_warmup_steps = termination_warmup_steps
        self.termination_warmup_selection = termination_warmup_selection
        self.return_sequences = bool(return_sequences)
        self.return_attention = bool(return_attention)
        self.return_stop_probabilities = bool(return_stop_probabilities)
        self.return_stop_step = bool(return_stop_step)
        self.seed = seed

        self.attention = TextAttention(
            form=attention_form,
            units=attention_units,
            seed=_offset_seed(seed, 0),
            name="attention",
        )
        self.cell = ConvGRUCell(
            units,
            kernel_size=kernel_size,
            candidate_activation=candidate_activation,
            reset_gate_target=reset_gate_target,
            output_projection=output_projection,
            gate_bias_initializer=gate_bias_initializer,
            update_convention=update_convention,
            seed=_offset_seed(seed, 100),
            name="cell",
        )
        self.termination_gate = None
        if termination == "gumbel":
            self.termination_gate = GumbelTerminationGate(
                temperature=temperature,
                straight_through=straight_through,
                initial_bias=termination_initial_bias,
                warmup_steps=termination_warmup_steps,
                warmup_selection=termination_warmup_selection,
                seed=_offset_seed(seed, 200),
                name="termination_gate",
            )

    def _check_shapes(self, image_shape, text_shape):
        image_shape, text_shape = tuple(image_shape), tuple(text_shape)
        if len(image_shape) != 4:
            raise ValueError(
                "`image_features` must have rank 4 (batch, height, width, "
                f"channels). Received: image_features.shape={image_shape}"
            )
        if len(text_shape) != 3:
            raise ValueError(
                "`text_features` must have rank 3 (batch, words, channels). "
                f"Received: text_features.shape={text_shape}"
            )
        if image_shape[-1] != self.units:
            raise ValueError(
                f"`image_features` must have `units`={self.units} channels "
                "(S^0 = V). "
                f"Received: image_features.shape={image_shape}"
            )
        if text_shape[-1] is None:
            raise ValueError(
                "The channel dimension of `text_features` must be known. "
                f"Received: text_features.shape={text_shape}"
            )
        image_batch, text_batch = image_shape[0], text_shape[0]
        if None not in (image_batch, text_batch) and image_batch != text_batch:
            raise ValueError(
                "`image_features` and `text_features` must have the same "
                f"batch size. Received: image_features.shape={image_shape}, "
                f"text_features.shape={text_shape}"
            )
        return image_shape, text_shape

    def build(self, image_features_shape, text_features_shape):
        image_shape, text_shape = self._check_shapes(
            image_features_shape, text_features_shape
        )
        self.attention.build(image_shape, text_shape)
        self.cell.build((*image_shape[:-1], text_shape[-1]), [image_shape])
        if self.termination_gate is not None:
            steps_shape = (image_shape[0], self.num_steps, *image_shape[1:])
            self.termination_gate.build(steps_shape, steps_shape)

    def call(self, image_features, text_features, mask=None, training=None):
        self._check_shapes(image_features.shape, text_features.shape)
        keys = self.attention.project_memory(text_features)
        state = image_features
        step_outputs, step_states, attention_weights = [], [], []
        for _ in range(self.num_steps):
            attended, weights = self.attention.attend(
                state, keys, text_features, mask=mask
            )
            output, [state] = self.cell(attended, [state], training=training)
            step_outputs.append(output)
            step_states.append(state)
            attention_weights.append(weights)

        results = {}
        if self.termination_gate is not None:
            fused, stop_probabilities, stop_step = self.termination_gate(
                ops.stack(step_outputs, axis=1),
                ops.stack(step_states, axis=1),
                training=training,
            )
            results["fused"] = fused
            if self.return_stop_probabilities:
                results["stop_probabilities"] = stop_probabilities
            if self.return_stop_step:
                results["stop_step"] = stop_step
        else:
            results["fused"] = step_outputs[-1]
        if not (
            self.return_sequences
            or self.return_attention
            or self.return_stop_probabilities
            or self.return_stop_step
        ):
            return results["fused"]
        if self.return_sequences:
            results["step_outputs"] = ops.stack(step_outputs, axis=1)
        if self.return_attention:
            weights = ops.stack(attention_weights, axis=-1)
            shape = ops.shape(weights)
            results["attention_weights"] = ops.reshape(
                weights, (shape[0], shape[1] * shape[2], shape[3], shape[4])
            )
        return results

    def compute_mask(self, image_features, previous_mask=None):
        # The outputs carry no Keras mask; defining this method also tells
        # Keras that an explicit `mask` argument is expected, not dropped.
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_steps": self.num_steps,
                "attention_form": self.attention_form,
                "attention_units": self.attention_units,
                "kernel_size": self.kernel_size,
                "output_projection": self.output_projection,
                "reset_gate_target": self.reset_gate_target,
                "gate_bias_initializer": self.gate_bias_initializer,
                "candidate_activation": self.cell.get_config()[
                    "candidate_activation"
                ],
                "update_convention": self.update_convention,
                "termination": self.termination,
                "temperature": serialize_temperature(self.temperature),
                "straight_through": self.straight_through,
                "termination_initial_bias": self.termination_initial_bias,
                "termination_warmup_steps": self.termination_warmup_steps,
                "termination_warmup_selection": (
                    self.termination_warmup_selection
                ),
                "return_sequences": self.return_sequences,
                "return_attention": self.return_attention,
                "return_stop_probabilities": self.return_stop_probabilities,
                "return_stop_step": self.return_stop_step,
                "seed": self.seed,
            }
        )
        return config
