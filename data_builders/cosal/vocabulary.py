"""The CoSaL artificial language: its 20 tokens and how text maps to ids."""

import re

SHAPE_NAMES = (
    "rectangle",
    "half fat ellipse",
    "fat ellipse",
    "triangle",
    "reverse triangle",
    "thin ellipse",
    "half thin ellipse",
    "diamond",
    "circle",
)
COLOR_NAMES = ("blue", "light green", "red", "black", "grey", "yellow")
COLOR_RGB = (
    (0, 0, 255),
    (0, 255, 0),
    (255, 0, 0),
    (0, 0, 0),
    (128, 128, 128),
    (255, 255, 0),
)
# Label k of a colour label map: 0 the white background, c + 1 colour c.
BACKGROUND_RGB = (255, 255, 255)
LABEL_RGB = (BACKGROUND_RGB,) + COLOR_RGB
RELATIONS = ("above", "below", "left", "right")
TOKENS = SHAPE_NAMES + COLOR_NAMES + ("is",) + RELATIONS
TOKEN_IDS = {token: index for index, token in enumerate(TOKENS)}
VOCABULARY_SIZE = len(TOKENS)
NUM_SENTENCES = 9
SENTENCE_LENGTH = 3

# Longest names first, so that "half fat ellipse" wins over "fat ellipse".
# Word boundaries make "circleis" an unknown word, as in the exported model.
_TOKEN_PATTERN = re.compile(
    r"\b(?:"
    + "|".join(
        re.escape(t).replace(r"\ ", r"\s+")
        for t in sorted(TOKENS, key=len, reverse=True)
    )
    + r")\b"
)


def sentence_to_ids(sentence):
    """Splits one sentence into CoSaL tokens and returns their ids.

    Multi-word names ("light green", "half thin ellipse") are single tokens.
    Case and surrounding punctuation are ignored.

    Raises:
      ValueError: naming the first word that is not in the vocabulary.
    """
    text = sentence.lower().strip().strip(".!;,")
    ids = []
    position = 0
    for match in _TOKEN_PATTERN.finditer(text):
        gap = text[position : match.start()].strip()
        if gap:
            raise ValueError(
                f"Unknown word {gap.split()[0]!r} in sentence {sentence!r}. "
                f"CoSaL knows these tokens: {', '.join(TOKENS)}."
            )
        ids.append(TOKEN_IDS[" ".join(match.group(0).split())])
        position = match.end()
    rest = text[position:].strip()
    if rest:
        raise ValueError(
            f"Unknown word {rest.split()[0]!r} in sentence {sentence!r}. "
            f"CoSaL knows these tokens: {', '.join(TOKENS)}."
        )
    return ids


def text_to_sentence_ids(text):
    """Parses a description of 9 sentences of 3 tokens into a 9 x 3 id list.

    Sentences are separated by '.', ';' or new lines.

    Raises:
      ValueError: for unknown words, a sentence that is not 3 tokens long, or
        a description that is not exactly 9 sentences.
    """
    sentences = [s for s in re.split(r"[.;\n]+", text) if s.strip()]
    if len(sentences) != NUM_SENTENCES:
        raise ValueError(
            f"A CoSaL description has exactly {NUM_SENTENCES} sentences, "
            f"got {len(sentences)}. Separate sentences with '.', e.g. "
            "'circle is red. blue below circle. ...'."
        )
    result = []
    for sentence in sentences:
        ids = sentence_to_ids(sentence)
        if len(ids) != SENTENCE_LENGTH:
            raise ValueError(
                f"Each CoSaL sentence has exactly {SENTENCE_LENGTH} tokens "
                f"('<shape> is <colour>' or '<colour> <relation> <shape>'); "
                f"{sentence.strip()!r} has {len(ids)}."
            )
        result.append(ids)
    return result


def ids_to_sentence(ids):
    """Returns the text of one sentence given its token ids."""
    return " ".join(TOKENS[int(i)] for i in ids)
