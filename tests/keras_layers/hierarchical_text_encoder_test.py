"""Tests of the CoSaL code's word-then-sentence text encoder."""

import numpy as np
import pytest

from keras_layers.hierarchical_text_encoder import HierarchicalTextEncoder
from tests.keras_layers.word_encoder_test import lstm_weights, numpy_encoder
from tests.layer_checklist import run_layer_checklist

VOCABULARY_SIZE = 20


def _sentences(seed=0, batch=2, sentences=4, words=3):
    rng = np.random.default_rng(seed)
    shape = (batch, sentences, words)
    return rng.integers(0, VOCABULARY_SIZE, shape).astype("int32")


def _recurrent_lstms(layer, bidirectional):
    if bidirectional:
        return [layer.forward_layer, layer.backward_layer]
    return [layer]


def _last_outputs(per_word, units, bidirectional):
    """A sequence's summary: forward after the last step, backward first."""
    if not bidirectional:
        return per_word[:, -1]
    return np.concatenate(
        [per_word[:, -1, :units], per_word[:, 0, units:]], axis=-1
    )


@pytest.mark.parametrize(
    "word_bidirectional,sentence_bidirectional",
    [(False, False), (True, False), (False, True)],
)
@pytest.mark.parametrize("embedding", ["one_hot", "learned"])
def test_equals_numpy_reference(
    word_bidirectional, sentence_bidirectional, embedding
):
    ids = _sentences()
    encoder = HierarchicalTextEncoder(
        word_units=3,
        sentence_units=4,
        vocabulary_size=VOCABULARY_SIZE,
        embedding=embedding,
        embedding_dim=None if embedding == "one_hot" else 5,
        word_bidirectional=word_bidirectional,
        sentence_bidirectional=sentence_bidirectional,
        seed=2,
    )
    encoder.build(list(ids.shape))  # build() accepts lists too.
    rng = np.random.default_rng(7)
    for bidirectional, layer in [
        (word_bidirectional, encoder.word_encoder.recurrent_layer),
        (sentence_bidirectional, encoder.sentence_lstm),
    ]:
        for lstm in _recurrent_lstms(layer, bidirectional):
            lstm_weights(lstm, rng)
    outputs, vectors = encoder(ids, return_sentence_vectors=True)

    batch, num_sentences, num_words = ids.shape
    if embedding == "one_hot":
        table = np.eye(VOCABULARY_SIZE)
    else:
        table = np.asarray(encoder.word_encoder.embedding_layer.embeddings)
    # Word level: each sentence on its own, one sentence at a time.
    expected_vectors = np.stack(
        [
            _last_outputs(
                numpy_encoder(
                    table[ids[:, s]],
                    encoder.word_encoder.recurrent_layer,
                    word_bidirectional,
                ),
                3,
                word_bidirectional,
            )
            for s in range(num_sentences)
        ],
        axis=1,
    )
    expected_outputs = numpy_encoder(
        expected_vectors, encoder.sentence_lstm, sentence_bidirectional
    )
    word_dim = 6 if word_bidirectional else 3
    sentence_dim = 8 if sentence_bidirectional else 4
    assert vectors.shape == (batch, num_sentences, word_dim)
    assert outputs.shape == (batch, num_sentences, sentence_dim)
    np.testing.assert_allclose(vectors, expected_vectors, atol=1e-5)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)


def test_sentences_are_independent_at_word_level():
    ids = _sentences(seed=3, batch=1)
    changed = ids.copy()
    changed[0, 2] = (changed[0, 2] + 1) % VOCABULARY_SIZE
    encoder = HierarchicalTextEncoder(3, 4, VOCABULARY_SIZE, seed=0)
    outputs, vectors = encoder(ids, return_sentence_vectors=True)
    new_outputs, new_vectors = encoder(changed, return_sentence_vectors=True)
    vectors, new_vectors = np.asarray(vectors), np.asarray(new_vectors)
    np.testing.assert_allclose(new_vectors[:, [0, 1, 3]], vectors[:, [0, 1, 3]])
    assert not np.allclose(new_vectors[:, 2], vectors[:, 2])
    # The unidirectional sentence LSTM only sees earlier sentences.
    outputs, new_outputs = np.asarray(outputs), np.asarray(new_outputs)
    np.testing.assert_allclose(new_outputs[:, :2], outputs[:, :2])
    assert not np.allclose(new_outputs[:, 2:], outputs[:, 2:])


def test_word_weights_are_shared_and_forget_bias_is_zero():
    encoder = HierarchicalTextEncoder(3, 4, VOCABULARY_SIZE, seed=0)
    encoder(_sentences())
    # One word LSTM and one sentence LSTM: three tensors each.
    assert len(encoder.weights) == 6
    for lstm in (encoder.word_encoder.recurrent_layer, encoder.sentence_lstm):
        np.testing.assert_array_equal(lstm.cell.bias, 0)
    with_bias = HierarchicalTextEncoder(
        3, 4, VOCABULARY_SIZE, unit_forget_bias=True
    )
    with_bias(_sentences())
    np.testing.assert_array_equal(
        with_bias.sentence_lstm.cell.bias, [0] * 4 + [1] * 4 + [0] * 8
    )


def test_seed_makes_weights_reproducible():
    ids = _sentences()
    a = HierarchicalTextEncoder(3, 4, VOCABULARY_SIZE, seed=4)
    b = HierarchicalTextEncoder(3, 4, VOCABULARY_SIZE, seed=4)
    np.testing.assert_allclose(a(ids), b(ids))


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        ({}, (2, 9, 4)),
        ({"word_bidirectional": True, "unit_forget_bias": True}, (2, 9, 4)),
        (
            {
                "embedding": "learned",
                "embedding_dim": 5,
                "sentence_bidirectional": True,
            },
            (2, 9, 8),
        ),
    ],
)
def test_checklist(kwargs, shape):
    run_layer_checklist(
        lambda: HierarchicalTextEncoder(
            3, 4, VOCABULARY_SIZE, seed=1, **kwargs
        ),
        _sentences(seed=5, sentences=9),
        shape,
    )


def test_checklist_with_sentence_vectors():
    run_layer_checklist(
        lambda: HierarchicalTextEncoder(
            3, 4, VOCABULARY_SIZE, word_bidirectional=True, seed=1
        ),
        _sentences(seed=6, sentences=9),
        [(2, 9, 4), (2, 9, 6)],
        call_kwargs={"return_sentence_vectors": True},
    )


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"word_units": 0}, "word_units"),
        ({"sentence_units": -1}, "sentence_units"),
        ({"vocabulary_size": 0}, "vocabulary_size"),
        ({"embedding": "frozen"}, "embedding"),
        ({"embedding": "learned"}, "embedding_dim"),
        ({"embedding_dim": 4}, "embedding_dim"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    arguments = {
        "word_units": 3,
        "sentence_units": 4,
        "vocabulary_size": VOCABULARY_SIZE,
        **kwargs,
    }
    with pytest.raises(ValueError, match=name):
        HierarchicalTextEncoder(**arguments)


def test_bad_input_rank():
    encoder = HierarchicalTextEncoder(3, 4, VOCABULARY_SIZE)
    with pytest.raises(ValueError, match="rank-3"):
        encoder(np.zeros((2, 9), "int32"))
