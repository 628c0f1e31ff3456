"""Tests for reading word2vec binaries into the flowers embedding."""

import numpy as np
import pytest

from lbie_tf.core import errors
from lbie_tf.flowers import word_vectors


def _write(path, entries, dimension, header=None, newline=True):
    with open(path, "wb") as handle:
        handle.write(header or f"{len(entries)} {dimension}\n".encode())
        for word, vector in entries:
            handle.write(word.encode() + b" ")
            handle.write(np.asarray(vector, "<f4").tobytes())
            if newline:
                handle.write(b"\n")


@pytest.mark.parametrize("newline", [True, False])
def test_vocabulary_rows_come_from_the_file(tmp_path, newline):
    path = tmp_path / "vectors.bin"
    _write(
        path,
        [("Red", [9, 9]), ("red", [1, 2]), ("Petals", [3, 4]), ("x", [5, 6])],
        2,
        newline=newline,
    )
    tokens = ["<pad>", "<unk>", "red", "petals", "stamen"]
    vectors = word_vectors.load_word2vec_binary(path, tokens, 2)
    assert vectors.shape == (5, 2) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[0], 0.0)
    # The exact lowercase word wins over a cased one read before it.
    np.testing.assert_array_equal(vectors[2], [1, 2])
    # A cased word fills a row the file has no lowercase entry for.
    np.testing.assert_array_equal(vectors[3], [3, 4])
    assert np.all(np.abs(vectors[4]) < 1.0) and np.any(vectors[4] != 0)


def test_missing_file_and_wrong_dimension_are_one_line_errors(tmp_path):
    with pytest.raises(errors.UsageError, match="is not a file"):
        word_vectors.load_word2vec_binary(tmp_path / "no.bin", ["<pad>"], 2)
    path = tmp_path / "vectors.bin"
    _write(path, [("red", [1, 2, 3])], 3)
    with pytest.raises(errors.UsageError, match="embedding_dim=3"):
        word_vectors.load_word2vec_binary(path, ["<pad>", "<unk>", "red"], 2)


def test_not_word2vec_and_truncated_files_are_refused(tmp_path):
    path = tmp_path / "text.bin"
    path.write_bytes(b"hello world\n")
    with pytest.raises(errors.UsageError, match="not a word2vec binary"):
        word_vectors.load_word2vec_binary(path, ["<pad>"], 2)
    _write(path, [("red", [1, 2])], 2, header=b"3 2\n")
    with pytest.raises(errors.UsageError, match="truncated"):
        word_vectors.load_word2vec_binary(path, ["<pad>"], 2)
