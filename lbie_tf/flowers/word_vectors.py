"""Word embeddings initialised from a local word2vec binary (the
GoogleNews-vectors-negative300.bin format the released code read), for the
words of the flowers vocabulary only."""

import os

import numpy as np

from lbie_tf.core import errors

# Words missing from the file start at small random values, the padding
# row at zero.
_MISSING_SCALE = 0.1


def _read_word(handle):
    """The next space-terminated word (bytes), skipping the newline that
    some writers put before it; b"" at the end of the file."""
    characters = bytearray()
    while True:
        character = handle.read(1)
        if not character:
            return bytes(characters)
        if character == b" ":
            return bytes(characters)
        if character != b"\n":
            characters.extend(character)


def load_word2vec_binary(path, tokens, dimension, seed=0):
    """float32 [len(tokens), dimension]: row i the vector of `tokens[i]`.

    The file is read once, keeping only the vocabulary's words (the
    GoogleNews file holds 3 million). Its format: a header line
    "<count> <dimension>", then per word the word, one space and
    `dimension` little-endian float32 values. Words the file lacks get
    N(0, 0.1^2) values seeded by `seed`; row 0 (padding) is zero.

    Raises:
      UsageError: the file is missing, not in this format, or of another
        dimension, naming the fix.
    """
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise errors.UsageError(
            f"`model.word_vectors`: {path!r} is not a file; give a "
            "word2vec binary (GoogleNews-vectors-negative300.bin format) "
            "or leave it unset for trainable embeddings."
        )
    wanted = {
        token.encode("utf-8"): index for index, token in enumerate(tokens)
    }
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, _MISSING_SCALE, (len(tokens), dimension))
    vectors = vectors.astype(np.float32)
    vectors[0] = 0.0
    with open(path, "rb") as handle:
        header = handle.readline().split()
        try:
            count, file_dimension = int(header[0]), int(header[1])
        except (IndexError, ValueError):
            raise errors.UsageError(
                f"`model.word_vectors`: {path!r} does not start with a "
                "'<count> <dimension>' line; it is not a word2vec binary."
            ) from None
        if file_dimension != dimension:
            raise errors.UsageError(
                f"`model.word_vectors`: {path!r} holds {file_dimension}-d "
                f"vectors but `model.embedding_dim` is {dimension}; set "
                f"--config.model.embedding_dim={file_dimension}."
            )
        size = 4 * dimension
        found = set()
        for _ in range(count):
            word = _read_word(handle)
            data = handle.read(size)
            if len(data) < size:
                raise errors.UsageError(
                    f"`model.word_vectors`: {path!r} ends before its "
                    f"{count} vectors; the file is truncated."
                )
            # The vocabulary is lowercase; a cased word ("Red") fills a
            # row only until the exact lowercase word is found.
            index = wanted.get(word)
            exact = index is not None
            if not exact:
                index = wanted.get(word.lower())
            if index and (exact or index not in found):
                vectors[index] = np.frombuffer(data, dtype="<f4")
                if exact:
                    found.add(index)
    return vectors
