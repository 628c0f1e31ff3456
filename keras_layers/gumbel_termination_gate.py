"""The paper's per-region termination gate with a Gumbel-softmax relaxation."""

import math

import keras
from keras import ops

from keras_layers.argument_checks import check_non_negative_int
from keras_layers.conv_gru import _check_seed, _seeded_initializer
from keras_layers.temperature_schedules import (
    get_temperature_schedule,
    serialize_temperature,
)


def _force_last_stop(values, last_value):
    """Replaces the last entry of the last axis of `values` by `last_value`."""
    return ops.concatenate([values[..., :-1], last_value], axis=-1)


def stop_log_distribution(gate_logits):
    """Log of the stop distribution, computed stably from the gate logits.

    log beta^t = log g_t + sum_{k<t} log(1 - g_k) for t < T and
    log beta^T = sum_{k<T} log(1 - g_k), with g = sigmoid(gate_logits);
    log g and log(1 - g) come from log-sigmoid, so saturated gates give
    finite values.

    Args:
      gate_logits: (..., T) pre-sigmoid gate values, steps on the last axis.

    Returns:
      (..., T) log stop probabilities.
    """
    log_stop = ops.log_sigmoid(gate_logits)
    log_continue = ops.log_sigmoid(-gate_logits)
    survival = ops.cumsum(log_continue, axis=-1) - log_continue
    return survival + _force_last_stop(
        log_stop, ops.zeros_like(log_stop[..., -1:])
    )


def stop_distribution(gate_probs):
    """The paper's stop distribution over steps (section 3, "Termination").

    beta^t = g_t prod_{k<t} (1 - g_k) for t < T, and the remaining mass
    prod_{k<T} (1 - g_k) on the last step T (a region that never stops uses
    step T), so the T values sum to 1. The gate of step T is not read.

    Args:
      gate_probs: (..., T) gate probabilities g in [0, 1], steps on the last
        axis.

    Returns:
      (..., T) stop probabilities beta.
    """
    gate_probs = ops.convert_to_tensor(gate_probs)
    continue_probs = 1.0 - gate_probs
    # Exclusive cumulative product: the probability of reaching step t.
    reach = ops.cumprod(
        ops.concatenate(
            [ops.ones_like(continue_probs[..., :1]), continue_probs[..., :-1]],
            axis=-1,
        ),
        axis=-1,
    )
    return reach * _force_last_stop(
        gate_probs, ops.ones_like(gate_probs[..., -1:])
    )


@keras.saving.register_keras_serializable(package="lbie")
class GumbelTerminationGate(keras.layers.Layer):
    """Per-region termination gate f_tg and Gumbel-softmax step selection.

    Paper section 3 ("Termination gates", "Loss and training"). For every
    region i and step t the gate reads the state s_i^t and gives
    g_i^t = f_tg(s_i^t) = sigmoid(w^T s_i^t + b). The stop distribution is
    beta_i^t = g_i^t prod_{k<t} (1 - g_i^k) for t < T, with the remaining
    mass on step T (`stop_distribution`). The fused output is
    o_i = sum_t z_i^t O_hat_i^t, where

    - training: z_i = softmax((log beta_i + eps_i) / lambda) over t, eps_i^t
      i.i.d. Gumbel(0, 1) drawn from a `keras.random.SeedGenerator`;
      `straight_through=True` uses the one-hot of argmax_t z_i in the forward
      pass and the soft z_i's gradient (Jang et al. 2017).
    - inference (`training` False or None): deterministic; z_i is the one-hot
      of the first step whose gate fires (g_i^t >= `threshold`), or of step
      T when none fires (Algorithm 1).

    The layer also returns that choice, the step each region keeps, so that
    evaluation and pictures read the gate's decision instead of re-deriving
    it: at inference the first firing step (step T during the warm-up), in
    training argmax_t z_i (the sampled step when the selection is one-hot).

    The temperature lambda is `temperature(step)`, where `step` is a
    non-trainable int64 counter variable of the layer, saved with it, that
    every call with `training=True` increments by one after reading it (so
    it counts training batches when the layer is called once per batch).

    Warm-up (not in the paper): the first `warmup_steps` training calls
    give z_i a one-hot of step T (`warmup_selection="last"`) or of a step
    drawn uniformly per region (`"uniform"`, so every step learns to give
    an output) before the gate learns where to stop; the gate gets no
    gradient until then. Inference selects step T until the gate has had a
    training call (`in_warmup(training=False)`).

    Weights: `gate_kernel` (D,), `gate_bias` (scalar), `step` (counter).

    Args:
      temperature: positive float, a schedule from `temperature_schedules`,
        or its config dict.
      straight_through: whether the training forward pass is hard (one-hot).
      threshold: gate value at which a region stops at inference, in (0, 1].
      initial_bias: the gate bias b at initialisation (the paper gives none).
        0 starts every gate at 0.5, so half of the stop mass is on step 1;
        a negative value starts the mass on the last step instead.
      warmup_steps: int >= 0, training batches before the Gumbel
        selection starts (0: none, the paper).
      warmup_selection: what the warm-up selects: "last" (step T) or
        "uniform" (a step drawn uniformly per region and batch).
      seed: optional int seeding the Gumbel noise and the initializer.

    Call arguments:
      step_outputs: (B, T, H, W, D_out) per-step outputs O_hat^t.
      step_states: (B, T, H, W, D) the states the gate reads.
      training: see above.

    Returns:
      `(fused, stop_probabilities, stop_step)`: (B, H, W, D_out),
      (B, H, W, T) and (B, H, W) int32, the 0-based step each region keeps
      (see above).
    """

    def __init__(
        self,
        temperature=1.0,
        straight_through=False,
        threshold=0.5,
        initial_bias=0.0,
        warmup_steps=0,
        warmup_selection="last",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(initial_bias, bool) or not isinstance(
            initial_bias, (int, float)
        ):
            raise ValueError(
                "`initial_bias` must be a finite number. "
                f"Received: initial_bias={initial_bias!r}"
            )
        if not math.isfinite(initial_bias):
            raise ValueError(
                "`initial_bias` must be a finite number. "
                f"Received: initial_bias={initial_bias}"
            )
        if isinstance(threshold, bool) or not isinstance(
            threshold, (int, float)
        ):
            raise ValueError(
                "`threshold` must be a number in (0, 1]. "
                f"Received: threshold={threshold!r}"
            )
        if not 0.0 < threshold <= 1.0:
            raise ValueError(
                "`threshold` must be a number in (0, 1]. "
                f"Received: threshold={threshold}"
            )
        check_non_negative_int("warmup_steps", warmup_steps)
        if warmup_selection not in ("last", "uniform"):
            raise ValueError(
                "`warmup_selection` must be 'last' or 'uniform'. "
                f"Received: warmup_selection={warmup_selection!r}"
            )
        _check_seed(seed)
        self.temperature = temperature
        self.temperature_schedule = get_temperature_schedule(temperature)
        self.straight_through = bool(straight_through)
        self.threshold = float(threshold)
        self.initial_bias = float(initial_bias)
        self.warmup_steps = int(warmup_steps)
        self.warmup_selection = warmup_selection
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, step_outputs_shape, step_states_shape):
        step_outputs_shape = tuple(step_outputs_shape)
        step_states_shape = tuple(step_states_shape)
        for name, shape in (
            ("step_outputs", step_outputs_shape),
            ("step_states", step_states_shape),
        ):
            if len(shape) != 5:
                raise ValueError(
                    f"`{name}` must have rank 5 (batch, steps, height, width, "
                    f"channels). Received: {name}.shape={shape}"
                )
        if step_states_shape[-1] is None:
            raise ValueError(
                "The channel dimension of `step_states` must be known. "
                f"Received: step_states.shape={step_states_shape}"
            )
        self.gate_kernel = self.add_weight(
            name="gate_kernel",
            shape=(step_states_shape[-1],),
            initializer=_seeded_initializer("glorot_uniform", self.seed, 0),
        )
        self.gate_bias = self.add_weight(
            name="gate_bias",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_bias),
        )
        self.step = self.add_weight(
            name="step",
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
        )

    def in_warmup(self, training=False):
        """Whether the next call is still in the warm-up (a scalar bool):
        for training, while fewer than `warmup_steps` training calls were
        made; for inference, until one gated training call was made."""
        if not self.warmup_steps:
            return ops.convert_to_tensor(False)
        if training:
            return self.step < self.warmup_steps
        return self.step <= self.warmup_steps

    def gate_logits(self, step_states):
        """(B, T, H, W, D) states -> (B, H, W, T) pre-sigmoid gate values."""
        logits = ops.matmul(step_states, self.gate_kernel) + self.gate_bias
        return ops.moveaxis(logits, 1, -1)

    def gate_probabilities(self, step_states):
        """(B, T, H, W, D) states -> (B, H, W, T) gate values g = f_tg(s)."""
        return ops.sigmoid(self.gate_logits(step_states))

    def call(self, step_outputs, step_states, training=None):
        num_steps = step_outputs.shape[1]
        logits = self.gate_logits(step_states)
        gate_probs = ops.sigmoid(logits)
        stop_probabilities = stop_distribution(gate_probs)
        if num_steps == 1:
            # A single step is always selected; this also avoids a softmax
            # over an axis of size 1.
            selection = ops.ones_like(logits)
            stop_step = ops.zeros_like(logits[..., 0], dtype="int32")
            if training:
                self.step.assign_add(1)
        elif training:
            temperature = self.temperature_schedule(self.step)
            in_warmup = ops.cast(self.in_warmup(training=True), logits.dtype)
            self.step.assign_add(1)
            uniform = keras.random.uniform(
                ops.shape(logits),
                minval=1e-20,
                maxval=1.0,
                dtype=logits.dtype,
                seed=self.seed_generator,
            )
            gumbel = -ops.log(-ops.log(uniform))
            log_beta = stop_log_distribution(logits)
            selection = ops.softmax(
                (log_beta + gumbel) / ops.cast(temperature, logits.dtype),
                axis=-1,
            )
            if self.straight_through:
                hard = ops.one_hot(
                    ops.argmax(selection, axis=-1),
                    num_steps,
                    dtype=selection.dtype,
                )
                selection = selection + ops.stop_gradient(hard - selection)
            if self.warmup_steps:
                if self.warmup_selection == "uniform":
                    warm_steps = keras.random.randint(
                        ops.shape(logits)[:-1],
                        0,
                        num_steps,
                        seed=self.seed_generator,
                    )
                else:
                    warm_steps = ops.full(ops.shape(logits)[:-1], num_steps - 1)
                warm = ops.one_hot(warm_steps, num_steps, dtype=selection.dtype)
                selection = in_warmup * warm + (1.0 - in_warmup) * selection
            stop_step = ops.cast(ops.argmax(selection, axis=-1), "int32")
        else:
            fired = _force_last_stop(
                gate_probs >= self.threshold,
                ops.ones_like(gate_probs[..., -1:], dtype="bool"),
            )
            # argmax returns the first maximum: the first step that fires.
            stop_step = ops.cast(
                ops.argmax(ops.cast(fired, "int32"), axis=-1), "int32"
            )
            if self.warmup_steps:
                stop_step = ops.where(
                    self.in_warmup(), num_steps - 1, stop_step
                )
            selection = ops.one_hot(
                stop_step, num_steps, dtype=step_outputs.dtype
            )
        fused = ops.einsum("bthwd,bhwt->bhwd", step_outputs, selection)
        return fused, stop_probabilities, stop_step

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "temperature": serialize_temperature(self.temperature),
                "straight_through": self.straight_through,
                "threshold": self.threshold,
                "initial_bias": self.initial_bias,
                "warmup_steps": self.warmup_steps,
                "warmup_selection": self.warmup_selection,
                "seed": self.seed,
            }
        )
        return config
