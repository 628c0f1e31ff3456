"""The released code's termination: an exact mixture over stopping steps."""

import keras
from keras import ops


def _check_epsilon(epsilon):
    if not isinstance(epsilon, (int, float)) or not 0.0 < epsilon < 0.5:
        raise ValueError(
            f"`epsilon` must be a number in the open interval (0, 0.5); "
            f"received epsilon={epsilon!r}."
        )


def _at_least_float32(x):
    # Half precision rounds 1 - 1e-6 to 1, so log(1 - g) would become -inf.
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in ("float32", "float64"):
        return x
    return ops.cast(x, "float32")


def _check_step_logits_shape(shape):
    shape = tuple(shape)
    if len(shape) < 3:
        raise ValueError(
            "`step_logits` must have shape (batch, steps, ..., 1 + classes) "
            f"with rank >= 3; received shape {shape}."
        )
    if shape[-1] is not None and shape[-1] < 2:
        raise ValueError(
            "`step_logits` needs a termination channel and at least one class "
            f"channel (last dimension >= 2); received shape {shape}."
        )


def mixture_log_stop_probabilities(gate_logits, epsilon=1e-6):
    """Log stop probabilities log P_t over the last axis (DEVIATIONS.md 1).

    g_t = clip(sigmoid(gate_logit_t), epsilon, 1 - epsilon) and
    log P_t = sum_{s<t} log(1 - g_s) + log g_t. The distribution is not
    normalised: as in the released code there is no forced stop at step T.

    Args:
      gate_logits: float tensor (..., T) of termination logits.
      epsilon: clipping of the gate probabilities, in (0, 0.5).

    Returns:
      A float tensor (..., T).
    """
    _check_epsilon(epsilon)
    gate_logits = _at_least_float32(gate_logits)
    gates = ops.clip(ops.sigmoid(gate_logits), epsilon, 1.0 - epsilon)
    log_continue = ops.log(1.0 - gates)
    # The exclusive cumulative sum is built by shifting rather than by
    # subtracting, so that step 0 is exactly log g_0.
    shifted = ops.concatenate(
        [ops.zeros_like(log_continue[..., :1]), log_continue[..., :-1]],
        axis=-1,
    )
    return ops.cumsum(shifted, axis=-1) + ops.log(gates)


def _split_step_logits(step_logits, epsilon):
    """Returns log P (B, ..., T) and per-step class log-probs (B, ..., T, C)."""
    step_logits = _at_least_float32(step_logits)
    _check_step_logits_shape(step_logits.shape)
    # Move the step axis next to the channels: (B, T, ..., 1 + C) becomes
    # (B, ..., T, 1 + C).
    step_last = ops.moveaxis(step_logits, 1, -2)
    log_stop = mixture_log_stop_probabilities(step_last[..., 0], epsilon)
    class_logits = step_last[..., 1:]
    return log_stop, class_logits


def mixture_negative_log_likelihood(labels, step_logits, epsilon=1e-6):
    """Per-pixel mixture loss -logsumexp_t(log P_t - CE_t) (DEVIATIONS.md 1).

    Args:
      labels: int tensor (B, H, W) of class ids in [0, C).
      step_logits: float tensor (B, T, H, W, 1 + C); channel 0 is the
        termination logit of each step, channels 1.. its class logits.
      epsilon: clipping of the gate probabilities, in (0, 0.5).

    Returns:
      A float tensor (B, H, W) of per-pixel negative log-likelihoods.
    """
    _check_epsilon(epsilon)
    step_logits = _at_least_float32(step_logits)
    _check_step_logits_shape(step_logits.shape)
    # The same sums as `_split_step_logits` + log-softmax, in the input's
    # (B, T, ..., 1 + C) layout: moving the step axis of the whole tensor
    # and slicing its channels made the training step's gradient spend a
    # fifth of its time in transposes and StridedSliceGrad
    # (results/bench_profile.md). `split`'s gradient is a concatenation,
    # and only the small per-step maps move their step axis last.
    gate_logits, class_logits = ops.split(step_logits, [1], axis=-1)
    num_classes = class_logits.shape[-1]
    log_probs = ops.log_softmax(class_logits, axis=-1)
    one_hot = ops.one_hot(
        ops.cast(labels, "int32"), num_classes, dtype=log_probs.dtype
    )
    # -CE_t is the log-probability of the label at step t: (B, T, ...).
    label_log_probs = ops.sum(log_probs * ops.expand_dims(one_hot, 1), -1)
    log_stop = mixture_log_stop_probabilities(
        ops.moveaxis(ops.squeeze(gate_logits, -1), 1, -1), epsilon
    )
    label_log_probs = ops.moveaxis(label_log_probs, 1, -1)
    return -ops.logsumexp(log_stop + label_log_probs, axis=-1)


def _gather_step(class_logits, stop_step):
    index = ops.expand_dims(ops.expand_dims(stop_step, -1), -1)
    chosen = ops.take_along_axis(class_logits, index, axis=-2)
    return ops.squeeze(chosen, axis=-2)


def mixture_predict(step_logits, epsilon=1e-6):
    """Per-pixel prediction of the released code (DEVIATIONS.md point 1).

    The step t* = argmax_t log P_t is chosen per pixel, then the argmax class
    of that step.

    Args:
      step_logits: float tensor (B, T, H, W, 1 + C), as in
        `mixture_negative_log_likelihood`.
      epsilon: clipping of the gate probabilities, in (0, 0.5).

    Returns:
      A pair (classes, stop_step) of int32 tensors (B, H, W).
    """
    _check_epsilon(epsilon)
    log_stop, class_logits = _split_step_logits(step_logits, epsilon)
    stop_step = ops.cast(ops.argmax(log_stop, axis=-1), "int32")
    chosen_logits = _gather_step(class_logits, stop_step)
    classes = ops.cast(ops.argmax(chosen_logits, axis=-1), "int32")
    return classes, stop_step


@keras.saving.register_keras_serializable(package="lbie")
class MixtureTermination(keras.layers.Layer):
    """Mixture over stopping steps of the released code (DEVIATIONS.md point 1).

    The released code has no Gumbel-softmax: every step's decoder output
    carries one termination channel, g_t = clip(sigmoid(.), eps, 1 - eps),
    log P_t = sum_{s<t} log(1 - g_s) + log g_t, and the per-pixel likelihood
    of label y is sum_t P_t softmax_t(y). This layer has no weights.

    Call arguments:
      step_logits: float tensor (B, T, H, W, 1 + C); channel 0 is the
        termination logit, channels 1.. the class logits.

    Returns:
      A dict with
        "log_stop_probabilities": (B, H, W, T), log P_t;
        "class_log_probabilities": (B, H, W, C),
          logsumexp_t(log P_t + log_softmax_t); the mixture negative
          log-likelihood of label y is minus its entry;
        "logits": (B, H, W, C), the class logits of the step t* chosen per
          pixel (their argmax is `mixture_predict`'s classes);
        "stop_step": (B, H, W) int32, t* = argmax_t log P_t.

    Args:
      epsilon: clipping of the gate probabilities, in (0, 0.5).
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        _check_epsilon(epsilon)
        self.epsilon = epsilon

    def build(self, input_shape):
        _check_step_logits_shape(input_shape)
        self.built = True

    def call(self, step_logits):
        log_stop, class_logits = _split_step_logits(step_logits, self.epsilon)
        log_probs = ops.log_softmax(class_logits, axis=-1)
        class_log_probs = ops.logsumexp(
            log_stop[..., None] + log_probs, axis=-2
        )
        stop_step = ops.cast(ops.argmax(log_stop, axis=-1), "int32")
        return {
            "log_stop_probabilities": log_stop,
            "class_log_probabilities": class_log_probs,
            "logits": _gather_step(class_logits, stop_step),
            "stop_step": stop_step,
        }

    def compute_output_spec(self, step_logits):
        shape = tuple(step_logits.shape)
        spatial = (shape[0],) + shape[2:-1]
        steps = shape[1]
        classes = None if shape[-1] is None else shape[-1] - 1
        dtype = keras.backend.standardize_dtype(step_logits.dtype)
        if dtype in ("float16", "bfloat16"):
            dtype = "float32"
        return {
            "log_stop_probabilities": keras.KerasTensor(
                spatial + (steps,), dtype=dtype
            ),
            "class_log_probabilities": keras.KerasTensor(
                spatial + (classes,), dtype=dtype
            ),
            "logits": keras.KerasTensor(spatial + (classes,), dtype=dtype),
            "stop_step": keras.KerasTensor(spatial, dtype="int32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config
