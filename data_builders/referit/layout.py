"""ReferIt in Hu et al.'s text_objseg file layout: names, readers, checks."""

import dataclasses
import hashlib
import io
import json
import re

import numpy as np
import scipy.io
import tensorflow as tf
from PIL import Image

SPLITS = ("train", "val", "trainval", "test")
IMAGE_DIR = "images"
MASK_DIR = "mask"
MASK_KEY = "segimg_t"
BBOX_FILE = "referit_bbox.json"
IMCROP_FILE = "referit_imcrop.json"
IMSIZE_FILE = "referit_imsize.json"
VOCABULARY_FILE = "vocabulary_referit.txt"
SPECIAL_TOKENS = ("<pad>", "<go>", "<eos>", "<unk>")

# Hu et al. 2016's release: (images, expressions) per split, and the
# vocabulary size of vocabulary_referit.txt.
FULL_RELEASE = {"trainval": (9_995, 59_976), "test": (9_994, 60_105)}
FULL_RELEASE_VOCABULARY_SIZE = 8_803
# A query file naming at least this many images is taken for the full
# release, whose counts must then match; smaller ones are subsets (or
# synthetic data) and their counts are only reported.
FULL_RELEASE_MIN_IMAGES = 9_000

_SHOWN_PROBLEMS = 5
_IMLIST_LINE = re.compile(r"^(\d+)(\.jpg)?$")


def query_file(split):
    """The query file of a split: imcrop name -> list of expressions."""
    return f"referit_query_{split}.json"


def imlist_file(split):
    """The image list of a split: one image id per line."""
    return f"referit_{split}_imlist.txt"


def image_file(image_id):
    """The image's path inside the manual directory."""
    return f"{IMAGE_DIR}/{image_id}.jpg"


def mask_file(imcrop_name):
    """The region's mask path inside the manual directory."""
    return f"{MASK_DIR}/{imcrop_name}.mat"


def image_id_of(imcrop_name):
    """The image id of an imcrop name "<id>_<region>" (as Hu et al. split)."""
    return imcrop_name.split("_", 1)[0]


class ReferitDownloadError(ValueError):
    """A ReferIt manual directory with missing, broken or inconsistent files."""


class BrokenFileError(ValueError):
    """One file's content cannot be used; the message says why."""


def _one_line(text):
    return " ".join(str(text).split())


def _plural(count, noun):
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def jpeg_size(data):
    """Returns (width, height) of a JPEG from its header, without decoding.

    Raises:
      BrokenFileError: not a JPEG, an unreadable header, or a file cut
        short (no end-of-image marker after the last scan).
    """
    if not data.startswith(b"\xff\xd8"):
        raise BrokenFileError("not a JPEG (no start-of-image marker)")
    # Inside entropy-coded data every 0xFF byte is stuffed, so the last
    # start-of-scan and end-of-image markers are real ones: a complete file
    # ends its last scan with an end-of-image marker.
    last_scan = data.rfind(b"\xff\xda")
    if last_scan < 0:
        raise BrokenFileError("truncated (no image data after the header)")
    if data.rfind(b"\xff\xd9") < last_scan:
        raise BrokenFileError("truncated (no end-of-image marker)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size = image.format, image.size
    except (OSError, SyntaxError, ValueError) as error:
        raise BrokenFileError(f"unreadable JPEG header ({error})") from error
    if image_format != "JPEG":
        raise BrokenFileError(f"a {image_format} file, not a JPEG")
    return size


def read_segmentation(data):
    """Returns the 2-D `segimg_t` array of a mask .mat file.

    Raises:
      BrokenFileError: not a MATLAB v4-v7.2 file, no `segimg_t`, or not 2-D.
    """
    try:
        contents = scipy.io.loadmat(io.BytesIO(data), variable_names=[MASK_KEY])
    except NotImplementedError as error:
        raise BrokenFileError(
            "a MATLAB v7.3 (HDF5) file; save it as v7 or older"
        ) from error
    # scipy reports a corrupt file with several exception types (ValueError,
    # TypeError, OSError, zlib.error, MatReadError), so every one counts.
    except Exception as error:
        raise BrokenFileError(f"not a readable .mat file ({error})") from error
    if MASK_KEY not in contents:
        raise BrokenFileError(f"has no variable {MASK_KEY}")
    segmentation = np.asarray(contents[MASK_KEY])
    if segmentation.ndim != 2:
        raise BrokenFileError(
            f"{MASK_KEY} has shape {segmentation.shape}, expected 2-D"
        )
    return segmentation


def foreground(segmentation):
    """The object mask: 1 where segimg_t == 0 (Hu et al.'s reading), else 0."""
    return (segmentation == 0).astype(np.uint8)


def ordered_regions(queries, imcrops):
    """Groups a split's queried regions by image, in Hu et al.'s test order.

    Images come in the order their first region appears among the query
    file's keys; an image's regions in its referit_imcrop.json order,
    keeping only the regions the query file names. (Hu et al.'s test
    script enumerated a Python set of image names, whose order is
    arbitrary; first appearance makes it reproducible.)

    Args:
      queries: imcrop name -> list of expressions (one split).
      imcrops: image id -> list of imcrop names.

    Returns:
      A list of (image id, [imcrop name, ...]).
    """
    image_ids = dict.fromkeys(image_id_of(name) for name in queries)
    return [
        (image_id, [name for name in imcrops[image_id] if name in queries])
        for image_id in image_ids
    ]


def _parse_json(data):
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise BrokenFileError(f"not UTF-8 text ({error})") from error
    except json.JSONDecodeError as error:
        raise BrokenFileError(f"not valid JSON ({error})") from error


def _json_object(data):
    content = _parse_json(data)
    if not isinstance(content, dict):
        raise BrokenFileError(
            f"holds a JSON {type(content).__name__}, expected an object"
        )
    return content


def _is_string_list(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _image_key(key):
    # The released files key images by file name ("7023.jpg"); plain ids
    # are accepted too.
    return key[: -len(".jpg")] if key.endswith(".jpg") else key


def _stale_png_names(names):
    stale = [name for name in names if name.endswith(".png")]
    if stale:
        raise BrokenFileError(
            f"region names end in .png ({stale[0]}): this is the first "
            "(2016) version of the text_objseg files; take the current "
            "exp-referit/data/ files, whose names have no extension"
        )


def _parse_queries(data):
    queries = _json_object(data)
    for name, expressions in queries.items():
        if not _is_string_list(expressions):
            raise BrokenFileError(
                f"the value of {name!r} is not a list of strings"
            )
    _stale_png_names(queries)
    return queries


def _parse_imcrops(data):
    imcrops = {}
    for key, names in _json_object(data).items():
        if not _is_string_list(names):
            raise BrokenFileError(
                f"the value of {key!r} is not a list of imcrop names"
            )
        _stale_png_names(names)
        imcrops[_image_key(key)] = names
    return imcrops


def _parse_bboxes(data):
    bboxes = _json_object(data)
    for name, box in bboxes.items():
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(_is_number(v) for v in box)
        ):
            raise BrokenFileError(
                f"the value of {name!r} is not [x1, y1, x2, y2]"
            )
    return bboxes


def _parse_image_sizes(data):
    sizes = {}
    for key, size in _json_object(data).items():
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise BrokenFileError(
                f"the value of {key!r} is not [width, height] in pixels"
            )
        sizes[_image_key(key)] = tuple(size)
    return sizes


def _text_lines(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BrokenFileError(f"not UTF-8 text ({error})") from error
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _parse_imlist(data):
    image_ids = []
    for number, line in enumerate(_text_lines(data), start=1):
        match = _IMLIST_LINE.match(line.strip())
        if match is None:
            if not line.strip():
                continue
            raise BrokenFileError(
                f"line {number} ({line[:40]!r}) is not an image id"
            )
        image_ids.append(match.group(1))
    return image_ids


def _parse_vocabulary(data):
    tokens = _text_lines(data)
    if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise BrokenFileError(
            "lines 1-4 must be <pad>, <go>, <eos>, <unk> (ids 0-3), got "
            f"{tokens[: len(SPECIAL_TOKENS)]}"
        )
    return tokens


@dataclasses.dataclass
class Annotations:
    """The parsed annotation files of a manual directory.

    Attributes:
      queries: split -> imcrop name -> list of expressions.
      imcrops: image id -> imcrop names, in the file's order.
      bboxes: imcrop name -> [x1, y1, x2, y2] in pixels.
      image_sizes: image id -> (width, height).
      imlists: split -> image ids, in the file's order.
      vocabulary: tokens; a token's id is its line number (from 0).
    """

    queries: dict
    imcrops: dict
    bboxes: dict
    image_sizes: dict
    imlists: dict
    vocabulary: list


@dataclasses.dataclass
class SplitCounts:
    """What a split's files hold.

    Attributes:
      images: distinct images among the query file's regions.
      regions: regions (keys) in the query file.
      expressions: expressions in the query file (one example each).
      imlist_images: lines of the split's image list.
      unlisted_images: query images missing from the image list.
      full_release: the release's (images, expressions), or None.
      compared: whether the counts were held against full_release.
    """

    images: int
    regions: int
    expressions: int
    imlist_images: int
    unlisted_images: int
    full_release: tuple | None
    compared: bool


@dataclasses.dataclass
class FileEntry:
    """One file that was read: path relative to the directory, size, hash."""

    path: str
    size: int
    sha256: str | None


@dataclasses.dataclass
class Report:
    """The outcome of check_download.

    Attributes:
      manual_dir: the directory checked.
      splits: split -> SplitCounts (splits whose query file parsed).
      vocabulary_size: tokens in vocabulary_referit.txt (0 if broken).
      files: every file read, in path order.
      problems: one line each, in the order found; empty when all is well.
      annotations: the parsed annotations when there are no problems.
    """

    manual_dir: str
    splits: dict
    vocabulary_size: int
    files: list
    problems: list
    annotations: Annotations | None

    def message(self):
        """One line naming the first few problems and their total count."""
        count = len(self.problems)
        shown = "; ".join(self.problems[:_SHOWN_PROBLEMS])
        if count > _SHOWN_PROBLEMS:
            shown += f"; and {count - _SHOWN_PROBLEMS:,} more"
        return (
            f"{_plural(count, 'problem')} in the ReferIt download at "
            f"{self.manual_dir}: {shown}. Fix: re-download or re-extract "
            "the files named (data_builders/referit/README.md says where), "
            "then check again with python -m data_builders.referit.verify "
            f"--manual_dir={self.manual_dir}"
        )

    def raise_for_problems(self):
        """Raises ReferitDownloadError(message()) if there is any problem."""
        if self.problems:
            raise ReferitDownloadError(self.message())


class _Reader:
    """Reads files of one directory, noting each file and each problem."""

    def __init__(self, manual_dir, compute_sha256):
        self.manual_dir = manual_dir
        self.compute_sha256 = compute_sha256
        self.files = []
        self._problems = {}

    def problem(self, text):
        # A dict keeps the first-found order and drops repeats (a region of
        # train is also one of trainval).
        self._problems.setdefault(_one_line(text), None)

    @property
    def problems(self):
        return list(self._problems)

    def read(self, path):
        """Returns the bytes of manual_dir/path, or None (noting why)."""
        full_path = f"{self.manual_dir}/{path}"
        try:
            with tf.io.gfile.GFile(full_path, "rb") as f:
                data = f.read()
        except tf.errors.NotFoundError:
            self.problem(f"{path}: missing")
            return None
        except tf.errors.OpError as error:
            self.problem(f"{path}: cannot be read ({error.message})")
            return None
        digest = (
            hashlib.sha256(data).hexdigest() if self.compute_sha256 else None
        )
        self.files.append(FileEntry(path, len(data), digest))
        return data

    def parse(self, path, parser):
        """Returns parser(bytes of path), or None (noting why)."""
        data = self.read(path)
        if data is None:
            return None
        try:
            return parser(data)
        except BrokenFileError as error:
            self.problem(f"{path}: {error}")
            return None

    def listing(self, directory):
        """Returns the names in manual_dir/directory, or None (noting why)."""
        try:
            return set(tf.io.gfile.listdir(f"{self.manual_dir}/{directory}"))
        except tf.errors.NotFoundError:
            self.problem(f"{directory}/: missing directory")
            return None


def _check_references(reader, split, queries, imcrops, bboxes, sizes):
    path = query_file(split)
    listed = {key: set(names) for key, names in (imcrops or {}).items()}
    for name in queries:
        image_id = image_id_of(name)
        if imcrops is not None:
            if image_id not in listed:
                reader.problem(
                    f"{IMCROP_FILE}: no entry for {image_id}.jpg "
                    f"(named by {path})"
                )
            elif name not in listed[image_id]:
                reader.problem(
                    f"{IMCROP_FILE}: {name} (in {path}) is not listed "
                    f"under {image_id}.jpg"
                )
        if bboxes is not None and name not in bboxes:
            reader.problem(f"{BBOX_FILE}: no box for {name} (in {path})")
        if sizes is not None and image_id not in sizes:
            reader.problem(
                f"{IMSIZE_FILE}: no size for {image_id}.jpg (in {path})"
            )


def _check_images_and_masks(reader, regions_by_image, sizes):
    image_names = reader.listing(IMAGE_DIR)
    mask_names = reader.listing(MASK_DIR)
    for image_id, names in regions_by_image.items():
        actual_size = None
        path = image_file(image_id)
        if image_names is not None and f"{image_id}.jpg" not in image_names:
            reader.problem(f"{path}: missing")
        elif image_names is not None:
            data = reader.read(path)
            if data is not None:
                try:
                    actual_size = jpeg_size(data)
                except BrokenFileError as error:
                    reader.problem(f"{path}: {error}")
        expected = sizes.get(image_id) if sizes is not None else None
        if actual_size and expected and tuple(expected) != actual_size:
            reader.problem(
                f"{IMSIZE_FILE}: {image_id}.jpg is {expected[0]} x "
                f"{expected[1]} there but {path} is {actual_size[0]} x "
                f"{actual_size[1]} (width x height)"
            )
        width, height = actual_size or expected or (None, None)
        for name in names:
            path_mask = mask_file(name)
            if mask_names is None:
                continue
            if f"{name}.mat" not in mask_names:
                reader.problem(f"{path_mask}: missing")
                continue
            data = reader.read(path_mask)
            if data is None:
                continue
            try:
                shape = read_segmentation(data).shape
            except BrokenFileError as error:
                reader.problem(f"{path_mask}: {error}")
                continue
            if width is not None and shape != (height, width):
                reader.problem(
                    f"{path_mask}: {MASK_KEY} is {shape[0]} x {shape[1]} "
                    f"but {path} is {height} x {width} (height x width)"
                )


def _count(split, queries, imlist, expect_full, reader):
    image_ids = dict.fromkeys(image_id_of(name) for name in queries)
    expressions = sum(len(v) for v in queries.values())
    imlist_ids = set(imlist or ())
    full_release = FULL_RELEASE.get(split)
    compared = full_release is not None and (
        expect_full or len(image_ids) >= FULL_RELEASE_MIN_IMAGES
    )
    if compared and (len(image_ids), expressions) != full_release:
        reader.problem(
            f"{query_file(split)}: {expressions:,} expressions on "
            f"{len(image_ids):,} images, but Hu et al.'s release has "
            f"{full_release[1]:,} on {full_release[0]:,}; take the file "
            "from the text_objseg repository"
        )
    return SplitCounts(
        images=len(image_ids),
        regions=len(queries),
        expressions=expressions,
        imlist_images=len(imlist or ()),
        unlisted_images=(
            sum(i not in imlist_ids for i in image_ids) if imlist else 0
        ),
        full_release=full_release,
        compared=compared,
    )


def check_download(
    manual_dir, splits=SPLITS, *, expect_full=False, compute_sha256=False
):
    """Checks a ReferIt manual directory without decoding any image.

    Every annotation file must parse; every region of the checked splits'
    query files must have an imcrop entry, a box, an image size, a readable
    JPEG whose header size is the one in referit_imsize.json, and a
    readable mask .mat whose segimg_t has the image's shape. Counts are
    held against Hu et al.'s release when `expect_full` is set or when a
    query file looks like the release (FULL_RELEASE_MIN_IMAGES images).

    Args:
      manual_dir: the directory (any path tf.io.gfile reads).
      splits: the splits whose query files and image lists are checked.
      expect_full: also require the release's counts and vocabulary size.
      compute_sha256: hash every file read (for a manifest).

    Returns:
      A Report; its `problems` list is empty when the download is usable.
    """
    manual_dir = str(manual_dir).rstrip("/") or "/"
    splits = tuple(splits)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(
            f"splits must be among {', '.join(SPLITS)}, got {unknown}."
        )
    reader = _Reader(manual_dir, compute_sha256)
    if not tf.io.gfile.isdir(manual_dir):
        reader.problem(f"{manual_dir}: not a directory")
        return Report(manual_dir, {}, 0, [], reader.problems, None)

    vocabulary = reader.parse(VOCABULARY_FILE, _parse_vocabulary)
    imcrops = reader.parse(IMCROP_FILE, _parse_imcrops)
    bboxes = reader.parse(BBOX_FILE, _parse_bboxes)
    sizes = reader.parse(IMSIZE_FILE, _parse_image_sizes)
    queries, imlists = {}, {}
    for split in splits:
        queries[split] = reader.parse(query_file(split), _parse_queries)
        imlists[split] = reader.parse(imlist_file(split), _parse_imlist)

    regions_by_image = {}
    for split in splits:
        if queries[split] is None:
            continue
        _check_references(reader, split, queries[split], imcrops, bboxes, sizes)
        for name in queries[split]:
            regions = regions_by_image.setdefault(image_id_of(name), {})
            regions.setdefault(name, None)
    _check_images_and_masks(reader, regions_by_image, sizes)

    counts = {
        split: _count(
            split, queries[split], imlists[split], expect_full, reader
        )
        for split in splits
        if queries[split] is not None
    }
    vocabulary_size = len(vocabulary or ())
    if (
        expect_full
        and vocabulary is not None
        and vocabulary_size != FULL_RELEASE_VOCABULARY_SIZE
    ):
        reader.problem(
            f"{VOCABULARY_FILE}: {vocabulary_size:,} tokens, but Hu et al.'s "
            f"release has {FULL_RELEASE_VOCABULARY_SIZE:,}"
        )
    problems = reader.problems
    annotations = None
    if not problems:
        annotations = Annotations(
            queries=queries,
            imcrops=imcrops,
            bboxes=bboxes,
            image_sizes=sizes,
            imlists=imlists,
            vocabulary=vocabulary,
        )
    files = sorted(reader.files, key=lambda entry: entry.path)
    return Report(
        manual_dir, counts, vocabulary_size, files, problems, annotations
    )
