"""Convolutional GRU cell and layer: the paper's C-GRU (section 3)."""

import keras
from keras import ops

_PADDINGS = ("same", "valid")
_RESET_GATE_TARGETS = ("state", "input")
_UPDATE_CONVENTIONS = ("paper", "original")


def _seeded_initializer(identifier, seed, offset):
    """Returns a Keras initializer, reseeded with `seed + offset` if seeded."""
    initializer = keras.initializers.get(identifier)
    if seed is None:
        return initializer
    config = initializer.get_config()
    if "seed" not in config:
        return initializer
    config["seed"] = seed + offset
    return initializer.__class__.from_config(config)


def _check_seed(seed):
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int)
    ):
        raise ValueError(
            f"`seed` must be None or an int. Received: seed={seed!r}"
        )


@keras.saving.register_keras_serializable(package="lbie")
class ConvGRUCell(keras.layers.Layer):
    """One step of the convolutional GRU of the paper (section 3, "C-GRUs").

    With S the state (`filters` channels), U the input (e.g. the attended text
    map U_hat^t, any channel count) and `*` a 2-D convolution, the paper's
    cell (`reset_gate_target="state"`, `update_convention="paper"`) is

        z = sigmoid(W1 * S + W2 * U + b1)
        r = sigmoid(W3 * S + W4 * U + b2)
        c = act(W5 * (r . S) + W6 * U + b)
        h = (1 - z) . S + z . c                          (O_hat^t = h)
        S_next = W7 * h      (output_projection=True; else S_next = h)

    with act = ReLU in the paper. `reset_gate_target="input"` is the CoSaL
    code's cell (DEVIATIONS.md point 3), where the reset gate multiplies the
    input instead of the state:

        r = sigmoid(W3 * S + W4 * U + b2)     (r has the input's channels)
        c = act(W5 * S + W6 * (r . U) + b)

    The original code writes the update as h = u . S + (1 - u) . c (DEVIATIONS
    point 3). That is the same family of cells: u = 1 - z, i.e.
    u = sigmoid(-(W1 * S + W2 * U + b1)). Only the sign of the initial gate
    bias tells the two apart, so `update_convention` picks which gate the
    constant `gate_bias_initializer` is added to: "paper" computes z as above
    (bias on z, so a positive bias favours the candidate c); "original"
    computes u = sigmoid(W1 * S + W2 * U + b1) and h = u . S + (1 - u) . c
    (bias on u, so a positive bias favours keeping S, as in the CoSaL
    (0.5) and flowers (1.0) code). The reset gate bias is the same constant
    in both conventions.

    Weights: `recurrent_kernel` = [W1 | W3] and `candidate_recurrent_kernel`
    = W5 act on S; `input_kernel` = [W2 | W4] and `candidate_input_kernel` =
    W6 act on U (or on r . U); `gate_bias` = [b1 | b2] (initialised to the
    constant `gate_bias_initializer`); `candidate_bias` = b; `output_kernel`
    = W7 (no bias, as in the paper), only when `output_projection=True`.

    Args:
      filters: channels of the state and of h, > 0.
      kernel_size: odd int or pair of odd ints; 1 is the original code's
        per-pixel cell.
      padding: "same" (the state keeps its size) or "valid" (only valid with
        kernel size 1, where the two agree).
      candidate_activation: activation of the candidate c (paper: "relu").
      reset_gate_target: "state" (paper, flowers code) or "input" (CoSaL
        code), see above.
      output_projection: whether S_next = W7 * h (paper) or S_next = h
        (original code).
      gate_bias_initializer: float constant for the z (or u) and r biases
        (paper: unspecified, 0.0; CoSaL code 0.5; flowers code 1.0).
      update_convention: "paper" or "original", see above.
      kernel_initializer: initializer of the kernels acting on the input and
        of W7.
      recurrent_initializer: initializer of the kernels acting on the state.
      bias_initializer: initializer of the candidate bias b.
      seed: optional int that seeds the initializers.

    Call arguments:
      inputs: (B, H, W, C_in) tensor.
      states: list holding one (B, H, W, filters) state tensor.
      training: unused (the cell has no dropout); kept for Keras' RNN API.

    Returns:
      `(h, [S_next])`, both (B, H, W, filters).
    """

    def __init__(
        self,
        filters,
        kernel_size=1,
        padding="same",
        candidate_activation="relu",
        reset_gate_target="state",
        output_projection=True,
        gate_bias_initializer=0.0,
        update_convention="paper",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(filters, bool)
            or not isinstance(filters, int)
            or filters <= 0
        ):
            raise ValueError(
                "`filters` must be a positive int. "
                f"Received: filters={filters!r}"
            )
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        kernel_size = tuple(kernel_size)
        if len(kernel_size) != 2 or any(
            isinstance(k, bool)
            or not isinstance(k, int)
            or k <= 0
            or k % 2 == 0
            for k in kernel_size
        ):
            raise ValueError(
                "`kernel_size` must be a positive odd int or a pair of them. "
                f"Received: kernel_size={kernel_size!r}"
            )
        if padding not in _PADDINGS:
            raise ValueError(
                f"`padding` must be one of {_PADDINGS}. "
                f"Received: padding={padding!r}"
            )
        if padding == "valid" and kernel_size != (1, 1):
            raise ValueError(
                "`padding='valid'` would shrink the state at every step; it is "
                "only allowed with kernel_size 1. "
                f"Received: padding={padding!r}, kernel_size={kernel_size}"
            )
        if reset_gate_target not in _RESET_GATE_TARGETS:
            raise ValueError(
                f"`reset_gate_target` must be one of {_RESET_GATE_TARGETS}. "
                f"Received: reset_gate_target={reset_gate_target!r}"
            )
        if update_convention not in _UPDATE_CONVENTIONS:
            raise ValueError(
                f"`update_convention` must be one of {_UPDATE_CONVENTIONS}. "
                f"Received: update_convention={update_convention!r}"
            )
        if isinstance(gate_bias_initializer, bool) or not isinstance(
            gate_bias_initializer, (int, float)
        ):
            raise ValueError(
                "`gate_bias_initializer` must be a float. "
                f"Received: gate_bias_initializer={gate_bias_initializer!r}"
            )
        _check_seed(seed)
        self.filters = filters
        self.kernel_size = kernel_size
        self.padding = padding
        self.candidate_activation = keras.activations.get(candidate_activation)
        self.reset_gate_target = reset_gate_target
        self.output_projection = bool(output_projection)
        self.gate_bias_initializer = float(gate_bias_initializer)
        self.update_convention = update_convention
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.state_size = filters
        self.output_size = filters

    def build(self, inputs_shape, states_shape=None):
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) != 4:
            raise ValueError(
                "`inputs` must have rank 4 (batch, height, width, channels). "
                f"Received: inputs.shape={inputs_shape}"
            )
        input_channels = inputs_shape[-1]
        if input_channels is None:
            raise ValueError(
                "The channel dimension of `inputs` must be known. "
                f"Received: inputs.shape={inputs_shape}"
            )
        if states_shape is not None:
            state_shape = states_shape
            if isinstance(states_shape, (list, tuple)) and states_shape:
                if isinstance(states_shape[0], (list, tuple)):
                    state_shape = states_shape[0]
            state_shape = tuple(state_shape)
            if state_shape[-1] not in (None, self.filters):
                raise ValueError(
                    f"The state must have `filters`={self.filters} channels. "
                    f"Received: state shape {state_shape}"
                )
        self.input_channels = input_channels
        reset_channels = (
            self.filters
            if self.reset_gate_target == "state"
            else input_channels
        )
        self.reset_channels = reset_channels
        gate_channels = self.filters + reset_channels
        kernel = self.kernel_size
        seed = self.seed
        self.input_kernel = self.add_weight(
            name="input_kernel",
            shape=(*kernel, input_channels, gate_channels),
            initializer=_seeded_initializer(self.kernel_initializer, seed, 0),
        )
        self.candidate_input_kernel = self.add_weight(
            name="candidate_input_kernel",
            shape=(*kernel, input_channels, self.filters),
            initializer=_seeded_initializer(self.kernel_initializer, seed, 1),
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(*kernel, self.filters, gate_channels),
            initializer=_seeded_initializer(
                self.recurrent_initializer, seed, 2
            ),
        )
        self.candidate_recurrent_kernel = self.add_weight(
            name="candidate_recurrent_kernel",
            shape=(*kernel, self.filters, self.filters),
            initializer=_seeded_initializer(
                self.recurrent_initializer, seed, 3
            ),
        )
        self.gate_bias = self.add_weight(
            name="gate_bias",
            shape=(gate_channels,),
            initializer=keras.initializers.Constant(self.gate_bias_initializer),
        )
        self.candidate_bias = self.add_weight(
            name="candidate_bias",
            shape=(self.filters,),
            initializer=_seeded_initializer(self.bias_initializer, seed, 4),
        )
        if self.output_projection:
            self.output_kernel = self.add_weight(
                name="output_kernel",
                shape=(*kernel, self.filters, self.filters),
                initializer=_seeded_initializer(
                    self.kernel_initializer, seed, 5
                ),
            )
        else:
            self.output_kernel = None

    def _conv(self, x, kernel):
        # A 1x1 convolution is a matmul over channels; calling matmul directly
        # avoids the conv op's overhead in the fusion's hot loop.
        if self.kernel_size == (1, 1):
            return ops.matmul(x, kernel[0, 0])
        return ops.conv(x, kernel, strides=1, padding=self.padding)

    def call(self, inputs, states, training=None):
        del training
        state = states[0] if isinstance(states, (list, tuple)) else states
        filters = self.filters
        if self.reset_gate_target == "state":
            # One convolution of the input gives W2*U, W4*U and W6*U at once.
            input_kernel = ops.concatenate(
                [self.input_kernel, self.candidate_input_kernel], axis=-1
            )
            input_terms = self._conv(inputs, input_kernel)
            gate_terms = (
                input_terms[..., :-filters]
                + self._conv(state, self.recurrent_kernel)
                + self.gate_bias
            )
            gates = ops.sigmoid(gate_terms)
            update, reset = gates[..., :filters], gates[..., filters:]
            candidate = self.candidate_activation(
                input_terms[..., -filters:]
                + self._conv(reset * state, self.candidate_recurrent_kernel)
                + self.candidate_bias
            )
        else:
            recurrent_kernel = ops.concatenate(
                [self.recurrent_kernel, self.candidate_recurrent_kernel],
                axis=-1,
            )
            state_terms = self._conv(state, recurrent_kernel)
            gate_terms = (
                state_terms[..., :-filters]
                + self._conv(inputs, self.input_kernel)
                + self.gate_bias
            )
            gates = ops.sigmoid(gate_terms)
            update, reset = gates[..., :filters], gates[..., filters:]
            candidate = self.candidate_activation(
                state_terms[..., -filters:]
                + self._conv(reset * inputs, self.candidate_input_kernel)
                + self.candidate_bias
            )
        if self.update_convention == "paper":
            h = state + update * (candidate - state)
        else:
            h = candidate + update * (state - candidate)
        if self.output_kernel is not None:
            next_state = self._conv(h, self.output_kernel)
        else:
            next_state = h
        return h, [next_state]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "padding": self.padding,
                "candidate_activation": keras.activations.serialize(
                    self.candidate_activation
                ),
                "reset_gate_target": self.reset_gate_target,
                "output_projection": self.output_projection,
                "gate_bias_initializer": self.gate_bias_initializer,
                "update_convention": self.update_convention,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "recurrent_initializer": keras.initializers.serialize(
                    self.recurrent_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="lbie")
class ConvGRU(keras.layers.Layer):
    """Runs a `ConvGRUCell` over a sequence, like Keras' `ConvLSTM2D`.

    The recurrence is the paper's C-GRU (section 3); see `ConvGRUCell` for the
    equations and the options taken from the original code. The sequence
    length must be known when the layer is built (a static Python loop over
    time, which is the fastest choice for the short sequences used here).

    Args:
      filters, kernel_size, padding, candidate_activation, reset_gate_target,
      output_projection, gate_bias_initializer, update_convention,
      kernel_initializer, recurrent_initializer, bias_initializer, seed: as in
      `ConvGRUCell`.
      return_sequences: whether to return h for every step (B, T, H, W,
        filters) or only the last one (B, H, W, filters).
      return_state: whether to also return the final state S_T.

    Call arguments:
      inputs: (B, T, H, W, C_in) tensor.
      initial_state: optional (B, H, W, filters) tensor (or a list holding
        one); zeros when omitted.
      training: passed to the cell.

    Returns:
      The output (see `return_sequences`), or `[output, final_state]` when
      `return_state=True`.
    """

    def __init__(
        self,
        filters,
        kernel_size=1,
        padding="same",
        candidate_activation="relu",
        reset_gate_target="state",
        output_projection=True,
        gate_bias_initializer=0.0,
        update_convention="paper",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        seed=None,
        return_sequences=False,
        return_state=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = ConvGRUCell(
            filters,
            kernel_size=kernel_size,
            padding=padding,
            candidate_activation=candidate_activation,
            reset_gate_target=reset_gate_target,
            output_projection=output_projection,
            gate_bias_initializer=gate_bias_initializer,
            update_convention=update_convention,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            seed=seed,
            name="cell",
        )
        self.filters = self.cell.filters
        self.kernel_size = self.cell.kernel_size
        self.padding = padding
        self.candidate_activation = self.cell.candidate_activation
        self.reset_gate_target = reset_gate_target
        self.output_projection = self.cell.output_projection
        self.gate_bias_initializer = self.cell.gate_bias_initializer
        self.update_convention = update_convention
        self.kernel_initializer = self.cell.kernel_initializer
        self.recurrent_initializer = self.cell.recurrent_initializer
        self.bias_initializer = self.cell.bias_initializer
        self.seed = seed
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)

    def build(self, inputs_shape, initial_state_shape=None):
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) != 5:
            raise ValueError(
                "`inputs` must have rank 5 (batch, time, height, width, "
                f"channels). Received: inputs.shape={inputs_shape}"
            )
        if inputs_shape[1] is None:
            raise ValueError(
                "The number of time steps of `inputs` must be known. "
                f"Received: inputs.shape={inputs_shape}"
            )
        step_shape = (inputs_shape[0], *inputs_shape[2:])
        state_shape = (*step_shape[:-1], self.filters)
        self.cell.build(step_shape, [state_shape])

    def call(self, inputs, initial_state=None, training=None):
        if isinstance(initial_state, (list, tuple)):
            initial_state = initial_state[0]
        if initial_state is None:
            initial_state = ops.tile(
                ops.zeros_like(inputs[:, 0, :, :, :1]), [1, 1, 1, self.filters]
            )
        state = initial_state
        outputs = []
        for t in range(inputs.shape[1]):
            h, [state] = self.cell(inputs[:, t], [state], training=training)
            outputs.append(h)
        output = ops.stack(outputs, axis=1) if self.return_sequences else h
        if self.return_state:
            return [output, state]
        return output

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        inputs_shape = tuple(inputs_shape)
        state_shape = (inputs_shape[0], *inputs_shape[2:-1], self.filters)
        if self.return_sequences:
            output_shape = (*inputs_shape[:-1], self.filters)
        else:
            output_shape = state_shape
        if self.return_state:
            return [output_shape, state_shape]
        return output_shape

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in (
            "filters",
            "kernel_size",
            "padding",
            "candidate_activation",
            "reset_gate_target",
            "output_projection",
            "gate_bias_initializer",
            "update_convention",
            "kernel_initializer",
            "recurrent_initializer",
            "bias_initializer",
            "seed",
        ):
            config[key] = cell_config[key]
        config["return_sequences"] = self.return_sequences
        config["return_state"] = self.return_state
        return config
