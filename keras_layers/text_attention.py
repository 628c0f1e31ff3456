"""Text-to-region attention in the paper's and the original code's forms."""

import math

import keras
from keras import ops

from keras_layers.conv_gru import _check_seed, _seeded_initializer

_FORMS = ("bilinear", "scaled_dot", "additive")


def masked_softmax(scores, mask):
    """Softmax over the last axis that gives masked entries exactly 0.

    Args:
      scores: (..., L) float tensor.
      mask: None or a boolean tensor broadcastable to `scores`, True where
        the entry is real.

    Returns:
      Weights of the shape of `scores`. A row whose entries are all masked
      gives zeros (not NaN).
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, scores.dtype)
    # A large negative offset (not -inf, which would give NaN on a fully
    # masked row) removes padded words from the softmax; the product with
    # the mask then makes their weight exactly 0 and zeroes padded rows.
    large = 3e4 if scores.dtype == "float16" else 1e9
    weights = ops.softmax(scores + (mask - 1.0) * large, axis=-1)
    return weights * mask


@keras.saving.register_keras_serializable(package="lbie")
class TextAttention(keras.layers.Layer):
    """Attention of every image region over the words (paper section 3).

    For a region state s_i (D channels) and word features u_j (K channels,
    j = 1..L), the attended text is u_hat_i = sum_j a_ij u_j, with a_ij:

    - "bilinear" (paper, section 3 "Attention"):
      a_ij = softmax_j(s_i^T W u_j), W of shape (D, K). The paper has no
      bias, and any bias on the query side cancels in the softmax, so
      `use_bias` has no effect on this form.
    - "scaled_dot" (CoSaL code, DEVIATIONS.md point 4):
      a_ij = <s_i, FC(u_j)> / sqrt(D) with FC(u) = u W + b (K -> D),
      with NO softmax: the weights are raw and may be negative.
    - "additive" (flowers code, DEVIATIONS.md point 4; Bahdanau):
      a_ij = softmax_j(w^T tanh(U s_i + W u_j + b)), hidden size `units`.

    Padded words (mask False) get weight exactly 0 in every form; a region
    whose words are all padded gets zero weights and a zero attended vector.

    Weights: "bilinear": `bilinear_kernel` (D, K). "scaled_dot":
    `memory_kernel` (K, D), `memory_bias` (D,). "additive": `query_kernel`
    (D, units), `memory_kernel` (K, units), `memory_bias` (units,),
    `score_kernel` (units,). The biases exist only when `use_bias=True`.

    Args:
      form: "bilinear", "scaled_dot" or "additive".
      units: hidden size of the additive form (required there, > 0); must be
        None for the other forms.
      use_bias: whether FC (scaled_dot) and the tanh (additive) have a bias.
      kernel_initializer: initializer of the kernels.
      seed: optional int that seeds the initializers.

    Call arguments:
      query: (B, H, W, D) region states.
      memory: (B, L, K) word or sentence features.
      mask: optional (B, L) boolean tensor, True for real words.

    Returns:
      `(attended, weights)`: attended (B, H, W, K) and weights (B, H, W, L).
    """

    def __init__(
        self,
        form="bilinear",
        units=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if form not in _FORMS:
            raise ValueError(
                f"`form` must be one of {_FORMS}. Received: form={form!r}"
            )
        if form == "additive":
            if (
                isinstance(units, bool)
                or not isinstance(units, int)
                or units <= 0
            ):
                raise ValueError(
                    "`units` must be a positive int for form='additive'. "
                    f"Received: units={units!r}"
                )
        elif units is not None:
            raise ValueError(
                f"`units` is only used by form='additive' and must be None "
                f"for form={form!r}. Received: units={units!r}"
            )
        _check_seed(seed)
        self.form = form
        self.units = units
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed

    def build(self, query_shape, memory_shape):
        query_shape = tuple(query_shape)
        memory_shape = tuple(memory_shape)
        if len(query_shape) != 4:
            raise ValueError(
                "`query` must have rank 4 (batch, height, width, channels). "
                f"Received: query.shape={query_shape}"
            )
        if len(memory_shape) != 3:
            raise ValueError(
                "`memory` must have rank 3 (batch, words, channels). "
                f"Received: memory.shape={memory_shape}"
            )
        query_dim, memory_dim = query_shape[-1], memory_shape[-1]
        if query_dim is None or memory_dim is None:
            raise ValueError(
                "The channel dimensions of `query` and `memory` must be known. "
                f"Received: query.shape={query_shape}, "
                f"memory.shape={memory_shape}"
            )
        self.query_dim = query_dim
        seed = self.seed
        if self.form == "bilinear":
            self.bilinear_kernel = self.add_weight(
                name="bilinear_kernel",
                shape=(query_dim, memory_dim),
                initializer=_seeded_initializer(
                    self.kernel_initializer, seed, 0
                ),
            )
            return
        hidden = query_dim if self.form == "scaled_dot" else self.units
        self.memory_kernel = self.add_weight(
            name="memory_kernel",
            shape=(memory_dim, hidden),
            initializer=_seeded_initializer(self.kernel_initializer, seed, 1),
        )
        self.memory_bias = None
        if self.use_bias:
            self.memory_bias = self.add_weight(
                name="memory_bias", shape=(hidden,), initializer="zeros"
            )
        if self.form == "additive":
            self.query_kernel = self.add_weight(
                name="query_kernel",
                shape=(query_dim, hidden),
                initializer=_seeded_initializer(
                    self.kernel_initializer, seed, 2
                ),
            )
            self.score_kernel = self.add_weight(
                name="score_kernel",
                shape=(hidden,),
                initializer=_seeded_initializer(
                    self.kernel_initializer, seed, 3
                ),
            )

    def project_memory(self, memory):
        """Returns the per-word keys, which do not depend on the query.

        A recurrent caller (RecurrentAttentiveFusion) computes them once and
        passes them to `attend` at every step.

        Args:
          memory: (B, L, K) tensor.

        Returns:
          (B, L, D) keys for "bilinear" and "scaled_dot" (W u_j and FC(u_j)),
          (B, L, units) for "additive" (W u_j + b).
        """
        if self.form == "bilinear":
            return ops.matmul(memory, ops.transpose(self.bilinear_kernel))
        keys = ops.matmul(memory, self.memory_kernel)
        if self.memory_bias is not None:
            keys = keys + self.memory_bias
        return keys

    def attend(self, query, keys, memory, mask=None):
        """Attention given keys from `project_memory`; see the class doc."""
        if mask is not None:
            mask = ops.cast(mask, "bool")[:, None, None, :]
        if self.form == "additive":
            hidden = ops.tanh(
                ops.matmul(query, self.query_kernel)[:, :, :, None, :]
                + keys[:, None, None, :, :]
            )
            scores = ops.matmul(hidden, self.score_kernel)
        else:
            scores = ops.einsum("bhwd,bld->bhwl", query, keys)
        if self.form == "scaled_dot":
            weights = scores / math.sqrt(self.query_dim)
            if mask is not None:
                weights = ops.where(mask, weights, ops.zeros_like(weights))
        else:
            weights = masked_softmax(scores, mask)
        attended = ops.einsum("bhwl,blk->bhwk", weights, memory)
        return attended, weights

    def call(self, query, memory, mask=None):
        keys = self.project_memory(memory)
        return self.attend(query, keys, memory, mask=mask)

    def compute_mask(self, query, previous_mask=None):
        # The outputs carry no Keras mask; defining this method also tells
        # Keras that an explicit `mask` argument is expected, not dropped.
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "form": self.form,
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "seed": self.seed,
            }
        )
        return config
