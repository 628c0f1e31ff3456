"""Tests of ReferIt's letterbox, its inverse and the tokenizer against
independent references of Hu et al. 2016's rules."""

import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from lbie_tf.core import errors
from lbie_tf.referit import input_pipeline
from tests.lbie_tf.referit import skimage_reference

# Odd sizes: enlarged (37 x 91), one row or column after scaling (511 x 3,
# 1 x 1000), shrunk (600 x 400), and their transposes.
ODD_SIZES = [(37, 91), (511, 3), (1, 1000), (600, 400), (3, 511), (91, 37)]


def _ellipse(height, width):
    rows, cols = np.mgrid[:height, :width]
    return (
        ((rows - height / 2 + 0.5) / (height / 3 + 0.5)) ** 2
        + ((cols - width / 2 + 0.5) / (width / 3 + 0.5)) ** 2
    ) <= 1


# --- Resizing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "in_size, out_size",
    [((37, 91), (208, 512)), ((5, 3), (11, 2)), ((600, 400), (512, 341))]
    + [((1, 7), (1, 3)), ((4, 4), (1, 1)), ((2, 9), (7, 7))],
)
def test_resize_matches_the_numpy_reference(in_size, out_size):
    image = np.random.default_rng(0).uniform(0, 255, (*in_size, 3))
    resized = input_pipeline.resize_bilinear(image, *out_size).numpy()
    expected = skimage_reference.resize(image, *out_size)
    assert resized.shape == expected.shape
    assert np.max(np.abs(resized - expected)) <= 1e-3


def test_enlarging_blends_the_border_with_zero_unlike_tf_image_resize():
    # skimage's mode='constant', cval=0: the samples that fall outside the
    # image near its border read 0, so a constant image gets a dark rim.
    ones = np.ones((4, 4))
    resized = input_pipeline.resize_bilinear(ones, 8, 8).numpy()
    np.testing.assert_allclose(resized[0, 0], 0.75 * 0.75)
    np.testing.assert_allclose(resized[0, 3], 0.75)
    np.testing.assert_allclose(resized[3, 3], 1.0)
    clamped = tf.image.resize(ones[..., None], (8, 8), antialias=False)
    np.testing.assert_allclose(clamped.numpy()[0, 0, 0], 1.0)


def test_shrinking_does_not_anti_alias():
    # Shrinking 8 -> 2 samples input columns 1.5 and 5.5 only: a line in
    # column 0 vanishes. Today's skimage default (anti_aliasing=True) would
    # blur it into both output columns, and a thresholded mask would grow.
    image = np.zeros((8, 8))
    image[:, 0] = 1.0
    resized = input_pipeline.resize_bilinear(image, 2, 2).numpy()
    np.testing.assert_array_equal(resized, np.zeros((2, 2)))


def test_a_sample_on_a_pixel_centre_gives_its_neighbour_no_weight():
    # 1 -> 3 pixels: output pixel 1 samples input coordinate 0 exactly, so
    # it is 1 and the right neighbour (outside, 0) adds nothing.
    resized = input_pipeline.resize_bilinear(np.ones((1, 1)), 3, 3).numpy()
    assert resized[1, 1] == 1.0


def test_resize_runs_in_a_tf_function_with_dynamic_shapes():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def halve(image):
        shape = tf.shape(image)
        return input_pipeline.resize_bilinear(
            image, shape[0] // 2, shape[1] // 2
        )

    image = np.random.default_rng(1).uniform(0, 1, (10, 6)).astype("float32")
    np.testing.assert_allclose(
        halve(image).numpy(), skimage_reference.resize(image, 5, 3), atol=1e-6
    )


# --- The letterbox -------------------------------------------------------


@pytest.mark.parametrize("size", ODD_SIZES)
def test_letterbox_geometry_matches_the_original_rounding(size):
    height, width = size
    resized_height, resized_width, top, left = (
        int(value) for value in input_pipeline.letterbox_geometry(*size)
    )
    expected = skimage_reference.letterbox_size(height, width)
    assert (resized_height, resized_width) == expected
    assert top == (512 - expected[0]) // 2
    assert left == (512 - expected[1]) // 2


def test_letterbox_geometry_rounds_half_to_even():
    # 1 x 1024: the short side is 0.5 pixels, which np.round makes 0; the
    # port keeps 1. 3 x 1024: 1.5 rounds to 2; 5 x 1024: 2.5 rounds to 2.
    sizes = [
        int(input_pipeline.letterbox_geometry(h, 1024)[0]) for h in (1, 3, 5)
    ]
    assert sizes == [1, 2, 2]


@pytest.mark.parametrize("size", ODD_SIZES)
def test_letterbox_image_matches_the_reference(size):
    image = np.random.default_rng(2).integers(0, 256, (*size, 3), np.uint8)
    letterboxed = input_pipeline.letterbox_image(image).numpy()
    # Hu et al.: resize_and_pad, img_as_ubyte (rounding), minus the mean.
    expected = (
        np.round(skimage_reference.resize_and_pad(image))
        - np.array(input_pipeline.RGB_MEAN)
    ).astype(np.float32)
    assert letterboxed.shape == (512, 512, 3)
    assert letterboxed.dtype == np.float32
    assert np.max(np.abs(letterboxed - expected)) <= 1e-3


def test_letterbox_image_border_is_minus_the_mean():
    image = np.full((100, 50, 3), 200, np.uint8)
    letterboxed = input_pipeline.letterbox_image(image).numpy()
    np.testing.assert_allclose(
        letterboxed[0, 0], -np.array(input_pipeline.RGB_MEAN), rtol=1e-6
    )
    # The image (512 x 256) starts at column 128; inside it, 200 - mean.
    np.testing.assert_allclose(
        letterboxed[256, 256], 200 - np.array(input_pipeline.RGB_MEAN), 1e-6
    )


def test_a_grey_image_becomes_three_channels():
    grey = np.random.default_rng(3).integers(0, 256, (30, 20, 1), np.uint8)
    rgb = np.repeat(grey, 3, axis=-1)
    np.testing.assert_array_equal(
        input_pipeline.letterbox_image(grey).numpy(),
        input_pipeline.letterbox_image(rgb).numpy(),
    )


def test_letterbox_runs_inside_tf_data():
    images = [
        np.zeros((37, 91, 3), np.uint8),
        np.zeros((600, 400, 3), np.uint8),
    ]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(images),
        output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    ).map(input_pipeline.letterbox_image)
    assert dataset.element_spec.shape == (512, 512, 3)
    assert len(list(dataset)) == 2


@pytest.mark.parametrize("size", ODD_SIZES)
def test_letterbox_mask_matches_the_reference(size):
    mask = _ellipse(*size)
    letterboxed = input_pipeline.letterbox_mask(mask).numpy()
    expected = skimage_reference.resize_and_pad(mask) > 0
    assert letterboxed.dtype == bool
    np.testing.assert_array_equal(letterboxed, expected)


# --- The inverse ---------------------------------------------------------


@pytest.mark.parametrize("size", ODD_SIZES + [(512, 512), (2000, 1500)])
def test_prediction_to_original_matches_the_reference(size):
    prediction = np.random.default_rng(4).uniform(size=(512, 512)) > 0.7
    restored = input_pipeline.prediction_to_original(prediction, *size)
    expected = skimage_reference.resize_and_crop(prediction, *size) != 0
    assert restored.shape == size
    np.testing.assert_array_equal(restored.numpy(), expected)


def test_any_non_zero_interpolated_value_is_foreground():
    # One foreground pixel of 512 x 512 enlarged to 1024 x 1024 touches the
    # 4 x 4 outputs whose samples it weighs, not only its own 2 x 2.
    prediction = np.zeros((512, 512), bool)
    prediction[100, 100] = True
    restored = input_pipeline.prediction_to_original(prediction, 1024, 1024)
    rows, cols = np.nonzero(restored.numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (199, 202) * 2


@pytest.mark.parametrize("size", ODD_SIZES)
def test_a_letterboxed_mask_inverts_back_to_nearly_the_original(size):
    mask = _ellipse(*size)
    restored = input_pipeline.prediction_to_original(
        input_pipeline.letterbox_mask(mask), *size
    ).numpy()
    # Both steps keep every pixel that touches the object, so nothing is
    # lost and at most a pixel-wide rim is added.
    assert not np.any(mask & ~restored)
    assert (
        np.count_nonzero(mask & restored) / np.count_nonzero(mask | restored)
        >= 0.85
    )


def test_prediction_to_original_accepts_logits_thresholded_by_the_caller():
    logits = np.full((512, 512), -3.0, np.float32)
    logits[:256] = 2.0
    restored = input_pipeline.prediction_to_original(logits > 0, 100, 100)
    np.testing.assert_array_equal(
        restored.numpy(),
        skimage_reference.resize_and_crop(logits > 0, 100, 100) != 0,
    )


# --- Tokenisation ------------------------------------------------------------

VOCABULARY = {
    token: token_id
    for token_id, token in enumerate(
        ["<pad>", "<go>", "<eos>", "<unk>", "a", "man", "on", "the", "left"]
        + [",", "'", "s", ".", "..", "caf", "é", "k", "1", "2nd", "_x_", "i"]
        + ["σας", "-", '".', "?"]
    )
}

# Strings on which the Python and the graph tokenizer must agree.
AGREEMENT_TEXTS = [
    "a man on the left",
    "A MAN on The Left.",
    "man on the left..",
    "man on the left ...",
    "a, man",
    "a ,man",
    "a , man",
    "man,on,the,left",
    "a   man\ton\n\nthe\r\nleft",
    "  leading and trailing white space  ",
    "\u3000ideographic\u00a0no-break\u2003spaces\u3000",
    "man's left",
    '"the man".',
    "what? the man?",
    "café",
    "CAFÉ on the left",
    "ΣΑΣ",
    "\u212a (kelvin sign) lowercases to k",
    "İstanbul",
    "2nd man from the left",
    "1 2 3 45",
    "_x_ under_score",
    "snake_case_word",
    ".",
    " . ",
    "..",
    "a.",
    "a . ",
    "left-most man",
    "-",
    "a\x00b NUL",
    "ÀÉÎ mixed ÿ",
    "emoji 🙂 man",
    "man " * 30,
    "one two three four five six seven eight nine ten eleven twelve "
    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen "
    "twenty twenty-one",
    "x" * 10_000,
    "a " * 5_000,
    ",;:!?",
]


def test_white_space_code_points_are_pythons():
    expected = tuple(c for c in range(0x110000) if chr(c).isspace())
    assert input_pipeline.WHITE_SPACE_CODE_POINTS == expected


def test_tokenize_keeps_separators_unstripped():
    assert input_pipeline.tokenize("A man, on the LEFT.") == [
        "a",
        "man",
        ", ",
        "on",
        "the",
        "left",
    ]
    assert input_pipeline.tokenize("man's") == ["man", "'", "s"]
    assert input_pipeline.tokenize("café") == ["caf", "é"]
    assert input_pipeline.tokenize("the man..") == ["the", "man", ".."]
    assert input_pipeline.tokenize(" . ") == []


def test_encode_left_pads_and_maps_unknown_words():
    encoded = input_pipeline.encode("The man, on the LEFT.", VOCABULARY)
    assert encoded.dtype == np.int32
    assert encoded.shape == (20,)
    np.testing.assert_array_equal(encoded[:14], np.zeros(14))
    # ", " is not "," and is <unk> (3).
    np.testing.assert_array_equal(encoded[14:], [7, 5, 3, 6, 7, 8])


def test_encode_keeps_the_first_20_tokens():
    words = [f"w{i}" for i in range(25)]
    vocabulary = dict(VOCABULARY)
    vocabulary.update({w: 100 + i for i, w in enumerate(words)})
    encoded = input_pipeline.encode(" ".join(words), vocabulary)
    np.testing.assert_array_equal(encoded, 100 + np.arange(20))


def test_unknown_words_only_is_all_unk_and_a_lone_dot_all_pad():
    encoded = input_pipeline.encode("zebra giraffe", VOCABULARY)
    np.testing.assert_array_equal(encoded, [0] * 18 + [3, 3])
    np.testing.assert_array_equal(
        input_pipeline.encode(".", VOCABULARY), np.zeros(20)
    )


def test_a_long_text_costs_20_tokens():
    encoded = input_pipeline.encode("man " * 2_500, VOCABULARY)
    np.testing.assert_array_equal(encoded, np.full(20, 5))


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "\u3000\u00a0", b" "])
def test_an_empty_text_is_a_one_line_text_error(text):
    with pytest.raises(errors.TextError) as caught:
        input_pipeline.encode(text, VOCABULARY)
    message = str(caught.value)
    assert "\n" not in message
    assert "empty or only white space" in message


def test_python_and_graph_tokenizers_agree():
    assert len(AGREEMENT_TEXTS) >= 30
    encoder = input_pipeline.TextEncoder(VOCABULARY)
    graph = encoder(tf.constant(AGREEMENT_TEXTS)).numpy()
    assert graph.dtype == np.int32
    assert graph.shape == (len(AGREEMENT_TEXTS), 20)
    for text, ids in zip(AGREEMENT_TEXTS, graph, strict=True):
        np.testing.assert_array_equal(
            ids, input_pipeline.encode(text, VOCABULARY), err_msg=repr(text)
        )


def test_graph_tokenizer_in_a_tf_function_and_tf_data():
    encoder = input_pipeline.TextEncoder(VOCABULARY)
    function = tf.function(
        encoder, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    np.testing.assert_array_equal(
        function(tf.constant(["the man."])).numpy()[0],
        input_pipeline.encode("the man.", VOCABULARY),
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices(AGREEMENT_TEXTS[:8])
        .batch(3)
        .map(encoder)
    )
    batches = np.concatenate([batch.numpy() for batch in dataset])
    expected = [input_pipeline.encode(t, VOCABULARY) for t in AGREEMENT_TEXTS]
    np.testing.assert_array_equal(batches, np.stack(expected[:8]))
    empty = encoder(tf.constant([], tf.string)).numpy()
    assert empty.shape == (0, 20)


def test_graph_tokenizer_rejects_empty_texts():
    encoder = input_pipeline.TextEncoder(VOCABULARY)
    function = tf.function(
        encoder, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    for call in (encoder, function):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            call(tf.constant(["a man", " \t", "", "left"]))
        assert "empty or only white space" in caught.value.message
        # Eager execution prints the positions as "1, 2", a graph as
        # "[1 2]".
        assert re.search(r"batch positions:\W*1,? 2", caught.value.message), (
            caught.value.message
        )


def test_graph_tokenizer_rejects_invalid_utf8():
    encoder = input_pipeline.TextEncoder(VOCABULARY)
    with pytest.raises(tf.errors.InvalidArgumentError):
        encoder(tf.constant([b"\xff man"]))


def test_graph_tokenizer_survives_an_export(tmp_path):
    encoder = input_pipeline.TextEncoder(VOCABULARY)
    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.add_endpoint(
        "encode", encoder, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    path = str(tmp_path / "encoder")
    archive.write_out(path, verbose=False)
    del encoder, archive
    reloaded = tf.saved_model.load(path)
    texts = AGREEMENT_TEXTS[:10]
    np.testing.assert_array_equal(
        reloaded.encode(tf.constant(texts)).numpy(),
        np.stack([input_pipeline.encode(t, VOCABULARY) for t in texts]),
    )


# --- The vocabulary file -----------------------------------------------------


def _write(path, text):
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return str(path)


def test_read_vocabulary(tmp_path):
    path = _write(
        tmp_path / "vocabulary.txt",
        "<pad>\n<go>\n<eos>\n<unk>\na\nman \r\n,\nman\n",
    )
    vocabulary = input_pipeline.read_vocabulary(path)
    # Lines are stripped, as Hu et al. read them; a repeated token keeps its
    # last line.
    assert vocabulary == {
        "<pad>": 0,
        "<go>": 1,
        "<eos>": 2,
        "<unk>": 3,
        "a": 4,
        "man": 7,
        ",": 6,
    }


def test_read_vocabulary_checks_the_special_tokens(tmp_path):
    path = _write(tmp_path / "vocabulary.txt", "<pad>\n<unk>\n<go>\n<eos>\n")
    with pytest.raises(errors.UserError, match="token id 1 must be '<go>'"):
        input_pipeline.read_vocabulary(path)
    with pytest.raises(errors.UserError, match="does not exist"):
        input_pipeline.read_vocabulary(os.path.join(tmp_path, "missing.txt"))
