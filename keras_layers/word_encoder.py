"""A word-level LSTM or BiLSTM text encoder over token ids."""

import keras
import numpy as np
from keras import ops

from keras_layers.argument_checks import check_positive_int

EMBEDDINGS = ("one_hot", "learned", "frozen")


def _seeded(initializer, seed, offset):
    """A seeded copy of a named initializer, or the name when unseeded."""
    if seed is None:
        return initializer
    config = {"class_name": initializer, "config": {"seed": seed + offset}}
    return keras.initializers.get(config)


def _is_array(value):
    return isinstance(value, (np.ndarray, list, tuple)) or hasattr(
        value, "__array__"
    )


def make_lstm(
    units,
    return_sequences,
    unit_forget_bias,
    seed,
    seed_offset,
    go_backwards=False,
    name=None,
):
    """A Keras LSTM whose initializers draw from `seed + seed_offset`."""
    return keras.layers.LSTM(
        units,
        return_sequences=return_sequences,
        unit_forget_bias=unit_forget_bias,
        kernel_initializer=_seeded("GlorotUniform", seed, seed_offset),
        recurrent_initializer=_seeded("Orthogonal", seed, seed_offset + 1),
        go_backwards=go_backwards,
        name=name,
    )


def make_recurrent_layer(
    units, bidirectional, return_sequences, unit_forget_bias, seed, name
):
    """An LSTM, or a BiLSTM that concatenates its two directions.

    The backward LSTM is built explicitly so that, when seeded, it does not
    start as a copy of the forward one. Keras names the directions
    "forward_<name>" and "backward_<name>".
    """
    forward = make_lstm(
        units,
        return_sequences,
        unit_forget_bias,
        seed,
        0,
        name=name,
    )
    if not bidirectional:
        return forward
    backward = make_lstm(
        units,
        return_sequences,
        unit_forget_bias,
        seed,
        2,
        go_backwards=True,
        name=f"backward_{name}",
    )
    return keras.layers.Bidirectional(
        forward, backward_layer=backward, merge_mode="concat", name=name
    )


@keras.saving.register_keras_serializable(package="lbie")
class WordEncoder(keras.layers.Layer):
    """Word-level LSTM text encoder (paper section 3, "Language encoder").

    Each token is embedded (one-hot as in the CoSaL code, a learned
    embedding as in Hu et al., or frozen pretrained vectors such as the
    flowers code's word2vec; DEVIATIONS.md point 5), then an LSTM (or a
    BiLSTM whose per-word output concatenates both directions) gives the
    contextual features U = {u_i}, u_i in R^K, K = units (2 * units when
    bidirectional). Keras' LSTM gate order is i, f, c, o.

    With `mask_zero`, id 0 is padding (ReferIt left-pads with <pad> = 0):
    padded steps leave the LSTM state unchanged and the mask is passed on
    when `return_sequences`. Hu et al.'s code did not mask, which is the
    default here.

    Call arguments:
      inputs: int tensor (B, L) of token ids.

    Returns:
      (B, L, K) when `return_sequences`, else the last output (B, K); for a
      BiLSTM the last output concatenates the forward state after the last
      token and the backward state after the first.

    Args:
      units: LSTM units per direction.
      vocabulary_size: number of token ids (one-hot depth).
      embedding: "one_hot", "learned" or "frozen".
      embedding_dim: the embedding size; None for "one_hot" (the depth is
        `vocabulary_size`); required otherwise unless `embeddings_initializer`
        is an array, whose second dimension is then used.
      embeddings_initializer: for "learned" and "frozen", a Keras initializer
        (name, config or object) or a (vocabulary_size, embedding_dim) array
        of pretrained vectors. As with `keras.layers.Embedding(weights=...)`,
        an array is not repeated in `get_config()` (it appears there as
        None): the saved weights carry it.
      bidirectional: whether to use a BiLSTM.
      unit_forget_bias: Keras' forget-gate bias initialisation to 1 (TF1's
        `forget_bias=1.0` default); False starts it at 0 (the CoSaL code).
      return_sequences: whether to return every word's output.
      mask_zero: whether token id 0 is masked padding.
      seed: optional integer making the initial weights reproducible.
    """

    def __init__(
        self,
        units,
        vocabulary_size,
        embedding="one_hot",
        embedding_dim=None,
        embeddings_initializer=None,
        bidirectional=False,
        unit_forget_bias=True,
        return_sequences=True,
        mask_zero=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        check_positive_int("vocabulary_size", vocabulary_size)
        if embedding not in EMBEDDINGS:
            raise ValueError(
                f"`embedding` must be one of {EMBEDDINGS}; received "
                f"embedding={embedding!r}."
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
        ):
            raise ValueError(
                f"`seed` must be None or an integer; received seed={seed!r}."
            )
        pretrained = None
        if embedding == "one_hot":
            if embedding_dim is not None:
                raise ValueError(
                    "`embedding_dim` must be None with embedding='one_hot' "
                    "(the depth is vocabulary_size); received "
                    f"embedding_dim={embedding_dim!r}."
                )
            if embeddings_initializer is not None:
                raise ValueError(
                    "`embeddings_initializer` must be None with "
                    "embedding='one_hot'; received "
                    f"{type(embeddings_initializer).__name__}."
                )
        elif embeddings_initializer is not None and _is_array(
            embeddings_initializer
        ):
            pretrained = np.asarray(embeddings_initializer, dtype="float32")
            if pretrained.ndim != 2 or pretrained.shape[0] != vocabulary_size:
                raise ValueError(
                    "`embeddings_initializer` given as an array must have "
                    f"shape (vocabulary_size={vocabulary_size}, "
                    f"embedding_dim); received shape {pretrained.shape}."
                )
            if embedding_dim is None:
                embedding_dim = int(pretrained.shape[1])
            elif embedding_dim != pretrained.shape[1]:
                raise ValueError(
                    f"`embedding_dim` must match the pretrained vectors' "
                    f"size {pretrained.shape[1]}; received "
                    f"embedding_dim={embedding_dim!r}."
                )
        if embedding != "one_hot":
            if embedding_dim is None:
                raise ValueError(
                    f"`embedding_dim` is required with embedding="
                    f"{embedding!r}; received embedding_dim=None."
                )
            check_positive_int("embedding_dim", embedding_dim)
        self.units = int(units)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding = embedding
        self.embedding_dim = (
            None if embedding_dim is None else int(embedding_dim)
        )
        self.embeddings_initializer = embeddings_initializer
        self.bidirectional = bool(bidirectional)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.return_sequences = bool(return_sequences)
        self.mask_zero = bool(mask_zero)
        self.seed = None if seed is None else int(seed)
        self._pretrained = pretrained

        if embedding == "one_hot":
            self.embedding_layer = None
        else:
            if pretrained is not None:
                initializer = keras.initializers.Constant(0.0)
            elif embeddings_initializer is not None:
                initializer = keras.initializers.get(embeddings_initializer)
            else:
                initializer = _seeded("RandomUniform", self.seed, 4)
            self.embedding_layer = keras.layers.Embedding(
                self.vocabulary_size,
                self.embedding_dim,
                embeddings_initializer=initializer,
                trainable=embedding != "frozen",
                name="embedding",
            )
        self.recurrent_layer = make_recurrent_layer(
            self.units,
            self.bidirectional,
            self.return_sequences,
            self.unit_forget_bias,
            self.seed,
            name="lstm",
        )
        self.supports_masking = True

    @property
    def output_dim(self):
        """K, the size of each output vector."""
        return 2 * self.units if self.bidirectional else self.units

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                "`inputs` must be a rank-2 tensor (batch, words) of token "
                f"ids; received shape {input_shape}."
            )
        if self.embedding_layer is None:
            features = self.vocabulary_size
        else:
            self.embedding_layer.build(input_shape)
            if self._pretrained is not None:
                self.embedding_layer.embeddings.assign(self._pretrained)
            features = self.embedding_dim
        self.recurrent_layer.build(input_shape + (features,))

    def call(self, inputs):
        token_ids = ops.cast(inputs, "int32")
        if self.embedding_layer is None:
            features = ops.one_hot(
                token_ids, self.vocabulary_size, dtype=self.compute_dtype
            )
        else:
            features = self.embedding_layer(token_ids)
        mask = ops.not_equal(token_ids, 0) if self.mask_zero else None
        return self.recurrent_layer(features, mask=mask)

    def compute_mask(self, inputs, mask=None):
        if not (self.mask_zero and self.return_sequences):
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.output_dim)
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        initializer = self.embeddings_initializer
        if self._pretrained is not None:
            initializer = None
        elif initializer is not None:
            initializer = keras.initializers.serialize(
                keras.initializers.get(initializer)
            )
        config.update(
            {
                "units": self.units,
                "vocabulary_size": self.vocabulary_size,
                "embedding": self.embedding,
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": initializer,
                "bidirectional": self.bidirectional,
                "unit_forget_bias": self.unit_forget_bias,
                "return_sequences": self.return_sequences,
                "mask_zero": self.mask_zero,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        initializer = config.get("embeddings_initializer")
        if isinstance(initializer, dict):
            config["embeddings_initializer"] = keras.initializers.deserialize(
                initializer
            )
        return cls(**config)
