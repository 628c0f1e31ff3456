"""The CoSaL code's two-level text encoder: words, then sentences."""

import keras
from keras import ops

from keras_layers.argument_checks import check_positive_int
from keras_layers.word_encoder import WordEncoder, make_recurrent_layer

EMBEDDINGS = ("one_hot", "learned")


@keras.saving.register_keras_serializable(package="lbie")
class HierarchicalTextEncoder(keras.layers.Layer):
    """Word-level then sentence-level LSTMs (DEVIATIONS.md point 5).

    The CoSaL code encodes each 3-token sentence with a word LSTM (weights
    shared across sentences) whose last output is the sentence vector, then
    runs a sentence LSTM over the S = 9 sentence vectors; all S outputs are
    the memory the fusion attends over. The code used one-hot tokens, two
    unidirectional LSTMs of 128 units and forget bias 0
    (`unit_forget_bias=False`, the default here). The paper's CoSaL text
    (section 4.1) encodes each sentence with a shared BiLSTM of 16 units
    (`word_bidirectional=True`); the sentence vector then concatenates the
    forward state after the last token and the backward state after the
    first.

    Call arguments:
      inputs: int tensor (B, S, W) of token ids (S sentences of W tokens).
      return_sentence_vectors: whether to also return the word-level
        sentence vectors.

    Returns:
      (B, S, K) sentence-level outputs, K = sentence_units (doubled when
      `sentence_bidirectional`); with `return_sentence_vectors`, the pair
      (outputs, sentence_vectors (B, S, K_word)), K_word = word_units
      (doubled when `word_bidirectional`).

    Args:
      word_units: units of the word LSTM per direction.
      sentence_units: units of the sentence LSTM per direction.
      vocabulary_size: number of token ids (one-hot depth).
      embedding: "one_hot" (the code) or "learned".
      embedding_dim: the learned embedding size; None for "one_hot".
      word_bidirectional: whether the word level is a BiLSTM.
      sentence_bidirectional: whether the sentence level is a BiLSTM.
      unit_forget_bias: forget-gate bias initialised to 1 (True) or 0.
      seed: optional integer making the initial weights reproducible.
    """

    def __init__(
        self,
        word_units,
        sentence_units,
        vocabulary_size,
        embedding="one_hot",
        embedding_dim=None,
        word_bidirectional=False,
        sentence_bidirectional=False,
        unit_forget_bias=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("word_units", word_units)
        check_positive_int("sentence_units", sentence_units)
        check_positive_int("vocabulary_size", vocabulary_size)
        if embedding not in EMBEDDINGS:
            raise ValueError(
                f"`embedding` must be one of {EMBEDDINGS}; received "
                f"embedding={embedding!r}."
            )
        self.word_units = int(word_units)
        self.sentence_units = int(sentence_units)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding = embedding
        self.word_bidirectional = bool(word_bidirectional)
        self.sentence_bidirectional = bool(sentence_bidirectional)
        self.unit_forget_bias = bool(unit_forget_bias)
        # WordEncoder checks embedding_dim and seed.
        self.word_encoder = WordEncoder(
            self.word_units,
            self.vocabulary_size,
            embedding=embedding,
            embedding_dim=embedding_dim,
            bidirectional=self.word_bidirectional,
            unit_forget_bias=self.unit_forget_bias,
            return_sequences=False,
            seed=seed,
            name="word_encoder",
        )
        self.embedding_dim = self.word_encoder.embedding_dim
        self.seed = self.word_encoder.seed
        self.sentence_lstm = make_recurrent_layer(
            self.sentence_units,
            self.sentence_bidirectional,
            return_sequences=True,
            unit_forget_bias=self.unit_forget_bias,
            seed=None if self.seed is None else self.seed + 10,
            name="sentence_lstm",
        )

    @property
    def output_dim(self):
        """K, the size of each sentence-level output."""
        factor = 2 if self.sentence_bidirectional else 1
        return factor * self.sentence_units

    @property
    def sentence_vector_dim(self):
        """K_word, the size of each word-level sentence vector."""
        return self.word_encoder.output_dim

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                "`inputs` must be a rank-3 tensor (batch, sentences, words) "
                f"of token ids; received shape {input_shape}."
            )
        self.word_encoder.build((None, input_shape[2]))
        self.sentence_lstm.build(
            (input_shape[0], input_shape[1], self.sentence_vector_dim)
        )

    def call(self, inputs, return_sentence_vectors=False):
        shape = ops.shape(inputs)
        num_sentences = inputs.shape[1] or shape[1]
        num_words = inputs.shape[2] or shape[2]
        # Every sentence goes through the same word LSTM on its own.
        words = ops.reshape(inputs, (-1, num_words))
        sentence_vectors = ops.reshape(
            self.word_encoder(words),
            (-1, num_sentences, self.sentence_vector_dim),
        )
        outputs = self.sentence_lstm(sentence_vectors)
        if return_sentence_vectors:
            return outputs, sentence_vectors
        return outputs

    def compute_output_spec(self, inputs, return_sentence_vectors=False):
        batch, num_sentences = tuple(inputs.shape)[:2]
        outputs = keras.KerasTensor(
            (batch, num_sentences, self.output_dim), dtype=self.compute_dtype
        )
        if not return_sentence_vectors:
            return outputs
        vectors = keras.KerasTensor(
            (batch, num_sentences, self.sentence_vector_dim),
            dtype=self.compute_dtype,
        )
        return outputs, vectors

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "word_units": self.word_units,
                "sentence_units": self.sentence_units,
                "vocabulary_size": self.vocabulary_size,
                "embedding": self.embedding,
                "embedding_dim": self.embedding_dim,
                "word_bidirectional": self.word_bidirectional,
                "sentence_bidirectional": self.sentence_bidirectional,
                "unit_forget_bias": self.unit_forget_bias,
                "seed": self.seed,
            }
        )
        return config
