"""Oxford-102 flowers with Reed et al.'s captions: names, readers, checks."""

import collections
import dataclasses
import hashlib
import io
import re

import numpy as np
import scipy.io
import tensorflow as tf
from PIL import Image

# The class-disjoint caption splits (Reed et al. 2016) and their files.
SPLITS = ("train", "val", "trainval", "test")
CLASS_LIST_FILES = {
    "train": "trainclasses.txt",
    "val": "valclasses.txt",
    "trainval": "trainvalclasses.txt",
    "test": "testclasses.txt",
}
ALL_CLASSES_FILE = "allclasses.txt"

# Oxford-102's own files (Nilsback & Zisserman 2008).
IMAGE_DIR = "jpg"
LABELS_FILE = "imagelabels.mat"
LABELS_KEY = "labels"
SETID_FILE = "setid.mat"
OXFORD_SPLITS = ("trnid", "valid", "tstid")
CAPTION_DIR = "text_c10"
NUM_CLASSES = 102
CAPTIONS_PER_IMAGE = 10
# Where Reed et al.'s archive unpacks; its contents belong one level up.
REED_ARCHIVE_DIR = "cvpr2016_flowers"

# The full download: images, classes per caption split, images per Oxford
# split (setid.mat).
FULL_RELEASE_IMAGES = 8_189
FULL_RELEASE_CLASSES = {"trainval": 82, "test": 20}
FULL_RELEASE_OXFORD = {"trnid": 1_020, "valid": 1_020, "tstid": 6_149}
# An imagelabels.mat labelling at least this many images is taken for the
# full download, whose counts must then match; a smaller one is a subset
# (or synthetic data) and its counts are only reported.
FULL_RELEASE_MIN_IMAGES = 8_000

_SHOWN_PROBLEMS = 5
_SHOWN_NAMES = 3
_CLASS_NAME = re.compile(r"^class_(\d{5})$")


def class_name(class_id):
    """The caption folder of a 1-based class id: "class_00001"."""
    return f"class_{class_id:05d}"


def image_name(image_id):
    """The file name of a 1-based image id: "image_00001.jpg"."""
    return f"image_{image_id:05d}.jpg"


def image_file(image_id):
    """The image's path inside the manual directory."""
    return f"{IMAGE_DIR}/{image_name(image_id)}"


def caption_file(class_id, image_id):
    """The image's caption file inside the manual directory."""
    return f"{CAPTION_DIR}/{class_name(class_id)}/image_{image_id:05d}.txt"


class FlowersDownloadError(ValueError):
    """A manual directory with missing, broken or inconsistent files."""


class BrokenFileError(ValueError):
    """One file's content cannot be used; the message says why."""


def _one_line(text):
    return " ".join(str(text).split())


def _plural(count, noun):
    if count == 1:
        return f"{count:,} {noun}"
    return f"{count:,} {noun}" + ("es" if noun.endswith("s") else "s")


def _some(names):
    shown = ", ".join(names[:_SHOWN_NAMES])
    if len(names) > _SHOWN_NAMES:
        shown += ", ..."
    return shown


def _utf8(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BrokenFileError(f"not UTF-8 text ({error})") from error


def jpeg_header(data):
    """Returns (width, height, Pillow mode) of a JPEG, from its header.

    Raises:
      BrokenFileError: not a JPEG, an unreadable header, or a file cut
        short (no end-of-image marker after the last scan).
    """
    if not data.startswith(b"\xff\xd8"):
        raise BrokenFileError("not a JPEG (no start-of-image marker)")
    # Entropy-coded data stuffs every 0xFF byte, so the last start-of-scan
    # and end-of-image markers are real ones: a complete file ends its
    # last scan with an end-of-image marker.
    last_scan = data.rfind(b"\xff\xda")
    if last_scan < 0:
        raise BrokenFileError("truncated (no image data after the header)")
    if data.rfind(b"\xff\xd9") < last_scan:
        raise BrokenFileError("truncated (no end-of-image marker)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, size, mode = image.format, image.size, image.mode
    except (OSError, SyntaxError, ValueError) as error:
        raise BrokenFileError(f"unreadable JPEG header ({error})") from error
    if image_format != "JPEG":
        raise BrokenFileError(f"a {image_format} file, not a JPEG")
    return size[0], size[1], mode


def parse_captions(data):
    """The captions of one caption file, as a tuple of str.

    Lines are separated by "\\n"; each line loses its leading and trailing
    whitespace (so a "\\r\\n" ending too), blank lines are dropped, and a
    leading UTF-8 byte-order mark is ignored. The text is otherwise kept as
    written, non-ASCII characters included.

    Raises:
      BrokenFileError: not UTF-8, or no caption left (empty file).
    """
    text = _utf8(data).removeprefix("\ufeff")
    captions = tuple(line.strip() for line in text.split("\n") if line.strip())
    if not captions:
        raise BrokenFileError("holds no caption (empty or only blank lines)")
    return captions


def parse_class_list(data):
    """The class folder names of a class list, one per line, in file order.

    Raises:
      BrokenFileError: not UTF-8, no class, a line that is not a name
        class_XXXXX of a class 1-102, or a class named twice.
    """
    names, seen = [], {}
    for number, line in enumerate(_utf8(data).split("\n"), start=1):
        name = line.strip()
        if not name:
            continue
        match = _CLASS_NAME.match(name)
        if match is None:
            raise BrokenFileError(
                f"line {number} ({name[:40]!r}) is not a class folder name "
                "like class_00001"
            )
        if not 1 <= int(match.group(1)) <= NUM_CLASSES:
            raise BrokenFileError(
                f"line {number} ({name}) is not one of Oxford-102's classes "
                f"{class_name(1)}-{class_name(NUM_CLASSES)}"
            )
        if name in seen:
            raise BrokenFileError(
                f"line {number} repeats {name} (line {seen[name]})"
            )
        seen[name] = number
        names.append(name)
    if not names:
        raise BrokenFileError("names no class (empty file)")
    return names


def class_id_of(name):
    """The 1-based class id of a class folder name "class_00001"."""
    return int(_CLASS_NAME.match(name).group(1))


def _load_mat(data, keys):
    try:
        contents = scipy.io.loadmat(io.BytesIO(data), variable_names=keys)
    except NotImplementedError as error:
        raise BrokenFileError(
            "a MATLAB v7.3 (HDF5) file; save it as v7 or older"
        ) from error
    # scipy reports a corrupt file with several exception types (ValueError,
    # TypeError, OSError, zlib.error, MatReadError), so every one counts.
    except Exception as error:
        raise BrokenFileError(f"not a readable .mat file ({error})") from error
    missing = [key for key in keys if key not in contents]
    if missing:
        message = f"has no variable {' or '.join(missing)}"
        try:
            held = [name for name, _, _ in scipy.io.whosmat(io.BytesIO(data))]
        except Exception:
            held = []
        if held:
            message += f" (it holds {', '.join(held)})"
        raise BrokenFileError(message)
    return contents


def _integer_vector(value, key, allow_empty=False):
    array = np.asarray(value)
    if allow_empty and array.size == 0:
        return np.zeros((0,), np.int64)
    if array.ndim > 2 or sum(d > 1 for d in array.shape) > 1:
        raise BrokenFileError(
            f"{key} has shape {array.shape}, expected a vector (1, N)"
        )
    if array.dtype.kind not in "iuf" or array.size == 0:
        raise BrokenFileError(f"{key} holds no numbers")
    flat = array.ravel()
    if array.dtype.kind == "f" and not np.all(np.isfinite(flat)):
        raise BrokenFileError(f"{key} holds a NaN or an infinity")
    if not np.all(flat == np.round(flat)):
        raise BrokenFileError(f"{key} holds a value that is not an integer")
    return flat.astype(np.int64)


def parse_labels(data):
    """The 1-based class id of each image (image id = position + 1).

    Raises:
      BrokenFileError: no `labels` vector of integers in 1-102.
    """
    labels = _integer_vector(
        _load_mat(data, [LABELS_KEY])[LABELS_KEY], "labels"
    )
    bad = labels[(labels < 1) | (labels > NUM_CLASSES)]
    if bad.size:
        raise BrokenFileError(
            f"labels holds {bad[0]}, but Oxford-102's classes are "
            f"1-{NUM_CLASSES}"
        )
    return labels


def parse_setid(data):
    """Oxford's image-level split: key -> 1-based image ids, in file order.

    Raises:
      BrokenFileError: a key of trnid, valid, tstid missing, or not a
        vector of positive integers (an empty one is accepted).
    """
    contents = _load_mat(data, list(OXFORD_SPLITS))
    setid = {}
    for key in OXFORD_SPLITS:
        # A subset may leave a key empty; Oxford's own file never does.
        ids = _integer_vector(contents[key], key, allow_empty=True)
        if ids.size and ids.min() < 1:
            raise BrokenFileError(f"{key} holds {ids.min()}; ids start at 1")
        setid[key] = ids
    return setid


@dataclasses.dataclass
class Download:
    """The parsed manual directory, as the builder uses it.

    Attributes:
      labels: image id -> 1-based class id (images 1..N).
      oxford_split: image id -> "trnid", "valid" or "tstid".
      class_lists: split -> class folder names, in the file's order.
      split_images: split -> image ids of the split's classes, sorted.
      captions: image id -> its captions (images of trainval and test).
      image_modes: image id -> Pillow mode of the JPEG ("RGB", "L", ...).
    """

    labels: dict
    oxford_split: dict
    class_lists: dict
    split_images: dict
    captions: dict
    image_modes: dict


@dataclasses.dataclass
class SplitCounts:
    """What a caption split holds.

    Attributes:
      classes: classes its class list names.
      images: images of those classes (one example each).
      captions: captions of those images.
      fewer_captions: file names of its images with fewer than
        CAPTIONS_PER_IMAGE captions, sorted.
      full_release: the full download's class count, or None.
      compared: whether `classes` was held against full_release.
    """

    classes: int
    images: int
    captions: int
    fewer_captions: list
    full_release: int | None
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
      num_images: images labelled in imagelabels.mat (0 if broken).
      num_classes: classes in allclasses.txt (0 if broken).
      compared: whether the full download's counts were required.
      splits: split -> SplitCounts (splits whose class list parsed).
      oxford_counts: trnid / valid / tstid -> images (if setid.mat parsed).
      image_modes: Pillow mode -> number of images read.
      non_ascii_captions: captions holding a character outside ASCII.
      notes: facts worth a line that are not problems.
      files: every file read, in path order.
      problems: one line each, in the order found; empty when all is well.
      download: the parsed Download when there are no problems.
    """

    manual_dir: str
    num_images: int = 0
    num_classes: int = 0
    compared: bool = False
    splits: dict = dataclasses.field(default_factory=dict)
    oxford_counts: dict = dataclasses.field(default_factory=dict)
    image_modes: dict = dataclasses.field(default_factory=dict)
    non_ascii_captions: int = 0
    notes: list = dataclasses.field(default_factory=list)
    files: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)
    download: Download | None = None

    def message(self):
        """One line naming the first few problems and their total count."""
        count = len(self.problems)
        shown = "; ".join(self.problems[:_SHOWN_PROBLEMS])
        if count > _SHOWN_PROBLEMS:
            shown += f"; and {count - _SHOWN_PROBLEMS:,} more"
        return (
            f"{_plural(count, 'problem')} in the Oxford-102 flowers download "
            f"at {self.manual_dir}: {shown}. Fix: re-download or re-extract "
            "the files named (data_builders/oxford_flowers_captions/README.md"
            " says where), then check again with python -m "
            "data_builders.oxford_flowers_captions.verify "
            f"--manual_dir={self.manual_dir}"
        )

    def raise_for_problems(self):
        """Raises FlowersDownloadError(message()) if there is any problem."""
        if self.problems:
            raise FlowersDownloadError(self.message())


class _Reader:
    """Reads files of one directory, noting each file and each problem."""

    def __init__(self, manual_dir, compute_sha256):
        self.manual_dir = manual_dir
        self.compute_sha256 = compute_sha256
        self.files = []
        self._problems = {}

    def problem(self, text):
        # A dict keeps the first-found order and drops repeats.
        self._problems.setdefault(_one_line(text), None)

    @property
    def problems(self):
        return list(self._problems)

    def _hint(self, path):
        # Reed et al.'s archive unpacks into cvpr2016_flowers/; a file found
        # there is in the right archive but one folder too deep.
        nested = f"{self.manual_dir}/{REED_ARCHIVE_DIR}/{path}"
        if tf.io.gfile.exists(nested):
            return (
                f" (found under {REED_ARCHIVE_DIR}/: move that folder's "
                "contents up into the manual directory)"
            )
        return ""

    def read(self, path):
        """Returns the bytes of manual_dir/path, or None (noting why)."""
        try:
            with tf.io.gfile.GFile(f"{self.manual_dir}/{path}", "rb") as f:
                data = f.read()
        except tf.errors.NotFoundError:
            self.problem(f"{path}: missing{self._hint(path)}")
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
            names = tf.io.gfile.listdir(f"{self.manual_dir}/{directory}")
        except tf.errors.NotFoundError:
            self.problem(
                f"{directory}/: missing directory{self._hint(directory)}"
            )
            return None
        return {name.rstrip("/") for name in names}


def _check_setid(reader, setid, num_images):
    """Image id -> Oxford split key, noting ids out of range or not once."""
    where = collections.defaultdict(list)
    for key in OXFORD_SPLITS:
        ids = setid[key]
        if num_images:
            outside = ids[ids > num_images]
            if outside.size:
                reader.problem(
                    f"{SETID_FILE}: {key} names "
                    f"{_plural(outside.size, 'image')} past the last one "
                    f"({outside[0]}), but {LABELS_FILE} labels "
                    f"{num_images:,} images"
                )
        for image_id in ids.tolist():
            where[image_id].append(key)
    twice = sorted(i for i, keys in where.items() if len(keys) > 1)
    if twice:
        reader.problem(
            f"{SETID_FILE}: {_plural(len(twice), 'image')} listed more than "
            f"once among {', '.join(OXFORD_SPLITS)} "
            f"({_some([image_name(i) for i in twice])})"
        )
    if num_images:
        nowhere = [i for i in range(1, num_images + 1) if i not in where]
        if nowhere:
            reader.problem(
                f"{SETID_FILE}: {_plural(len(nowhere), 'image')} in none of "
                f"{', '.join(OXFORD_SPLITS)} "
                f"({_some([image_name(i) for i in nowhere])})"
            )
    return {i: keys[0] for i, keys in where.items()}


def _check_class_lists(reader, all_classes, lists, labels):
    """Notes class lists that disagree with allclasses.txt or each other."""
    known = set(all_classes or ())
    if all_classes is not None:
        for split, names in lists.items():
            for name in names:
                if name not in known:
                    reader.problem(
                        f"{CLASS_LIST_FILES[split]}: {name} is not a class "
                        f"of {ALL_CLASSES_FILE}"
                    )
    trainval, test = lists.get("trainval"), lists.get("test")
    if trainval is not None and test is not None:
        shared = sorted(set(trainval) & set(test))
        if shared:
            reader.problem(
                f"{CLASS_LIST_FILES['test']}: {_plural(len(shared), 'class')}"
                f" also in {CLASS_LIST_FILES['trainval']} ({_some(shared)}); "
                "the caption splits must be class-disjoint"
            )
        if all_classes is not None:
            neither = [c for c in all_classes if c not in {*trainval, *test}]
            if neither:
                reader.problem(
                    f"{ALL_CLASSES_FILE}: {_plural(len(neither), 'class')} in "
                    f"neither {CLASS_LIST_FILES['trainval']} nor "
                    f"{CLASS_LIST_FILES['test']} ({_some(neither)})"
                )
    train, val = lists.get("train"), lists.get("val")
    if train is not None and val is not None:
        shared = sorted(set(train) & set(val))
        if shared:
            reader.problem(
                f"{CLASS_LIST_FILES['val']}: {_plural(len(shared), 'class')} "
                f"also in {CLASS_LIST_FILES['train']} ({_some(shared)})"
            )
    if trainval is not None:
        for split in ("train", "val"):
            outside = sorted(set(lists.get(split) or ()) - set(trainval))
            if outside:
                reader.problem(
                    f"{CLASS_LIST_FILES[split]}: "
                    f"{_plural(len(outside), 'class')} not in "
                    f"{CLASS_LIST_FILES['trainval']} ({_some(outside)})"
                )
    if labels is None:
        return
    present = collections.Counter(class_name(c) for c in labels.tolist())
    if all_classes is not None:
        for name in sorted(set(present) - known):
            reader.problem(
                f"{LABELS_FILE}: {_plural(present[name], 'image')} of "
                f"{name}, which {ALL_CLASSES_FILE} does not list"
            )
    for split, names in lists.items():
        empty = [name for name in names if name not in present]
        if empty:
            reader.problem(
                f"{CLASS_LIST_FILES[split]}: {_plural(len(empty), 'class')} "
                f"with no image in {LABELS_FILE} ({_some(empty)})"
            )


def _check_images(reader, num_images):
    modes = {}
    names = reader.listing(IMAGE_DIR)
    if names is None:
        return modes
    for image_id in range(1, num_images + 1):
        path = image_file(image_id)
        if image_name(image_id) not in names:
            reader.problem(f"{path}: missing")
            continue
        data = reader.read(path)
        if data is None:
            continue
        try:
            modes[image_id] = jpeg_header(data)[2]
        except BrokenFileError as error:
            reader.problem(f"{path}: {error}")
    return modes


def _check_captions(reader, labels, class_ids):
    captions = {}
    folders = reader.listing(CAPTION_DIR)
    if folders is None:
        return captions
    by_class = collections.defaultdict(list)
    for image_id, class_id in enumerate(labels.tolist(), start=1):
        if class_id in class_ids:
            by_class[class_id].append(image_id)
    for class_id in sorted(by_class):
        folder = f"{CAPTION_DIR}/{class_name(class_id)}"
        if class_name(class_id) not in folders:
            reader.problem(
                f"{folder}/: missing directory (the captions of "
                f"{_plural(len(by_class[class_id]), 'image')})"
            )
            continue
        names = reader.listing(folder) or set()
        for image_id in by_class[class_id]:
            path = caption_file(class_id, image_id)
            if path.rsplit("/", 1)[1] not in names:
                reader.problem(f"{path}: missing")
                continue
            parsed = reader.parse(path, parse_captions)
            if parsed is not None:
                captions[image_id] = parsed
    return captions


def _count(report, lists, labels, captions, expect_full, reader):
    image_count = len(labels) if labels is not None else 0
    report.compared = expect_full or image_count >= FULL_RELEASE_MIN_IMAGES
    if report.compared and labels is not None:
        if image_count != FULL_RELEASE_IMAGES:
            reader.problem(
                f"{LABELS_FILE}: labels {image_count:,} images, but "
                f"Oxford-102 has {FULL_RELEASE_IMAGES:,}"
            )
    if report.compared and report.num_classes not in (0, NUM_CLASSES):
        reader.problem(
            f"{ALL_CLASSES_FILE}: {report.num_classes:,} classes, but "
            f"Oxford-102 has {NUM_CLASSES}"
        )
    if report.compared and report.oxford_counts:
        for key, expected in FULL_RELEASE_OXFORD.items():
            if report.oxford_counts[key] != expected:
                reader.problem(
                    f"{SETID_FILE}: {key} holds "
                    f"{report.oxford_counts[key]:,} images, but Oxford's "
                    f"split has {expected:,}"
                )
    for split, names in lists.items():
        class_ids = {class_id_of(name) for name in names}
        image_ids = [
            i
            for i, c in enumerate(
                labels.tolist() if labels is not None else (), start=1
            )
            if c in class_ids
        ]
        expected = FULL_RELEASE_CLASSES.get(split)
        compared = report.compared and expected is not None
        if compared and len(names) != expected:
            reader.problem(
                f"{CLASS_LIST_FILES[split]}: {_plural(len(names), 'class')}, "
                f"but Reed et al.'s split has {expected}"
            )
        report.splits[split] = SplitCounts(
            classes=len(names),
            images=len(image_ids),
            captions=sum(len(captions.get(i, ())) for i in image_ids),
            fewer_captions=[
                image_name(i)
                for i in image_ids
                if i in captions and len(captions[i]) < CAPTIONS_PER_IMAGE
            ],
            full_release=expected,
            compared=compared,
        )


def check_download(manual_dir, *, expect_full=False, compute_sha256=False):
    """Checks a manual directory; decodes no image beyond its header.

    imagelabels.mat, setid.mat and the five class lists must parse and
    agree: every image 1..N in exactly one of trnid / valid / tstid, the
    class lists naming classes of allclasses.txt, trainval and test
    class-disjoint and together allclasses.txt, train and val disjoint
    parts of trainval, every image's class listed and every listed class
    with an image. Every image must be a JPEG that is not cut short, and
    every image of a trainval or test class must have a caption file that
    is UTF-8 with at least one caption. Counts are held against the full
    download when `expect_full` is set or when imagelabels.mat labels
    FULL_RELEASE_MIN_IMAGES images or more.

    Args:
      manual_dir: the directory (any path tf.io.gfile reads).
      expect_full: also require the full download's counts.
      compute_sha256: hash every file read (for a manifest).

    Returns:
      A Report; its `problems` list is empty when the download is usable.
    """
    manual_dir = str(manual_dir).rstrip("/") or "/"
    report = Report(manual_dir)
    reader = _Reader(manual_dir, compute_sha256)
    if not tf.io.gfile.isdir(manual_dir):
        reader.problem(f"{manual_dir}: not a directory")
        report.problems = reader.problems
        return report

    labels = reader.parse(LABELS_FILE, parse_labels)
    setid = reader.parse(SETID_FILE, parse_setid)
    all_classes = reader.parse(ALL_CLASSES_FILE, parse_class_list)
    lists = {}
    for split in SPLITS:
        names = reader.parse(CLASS_LIST_FILES[split], parse_class_list)
        if names is not None:
            lists[split] = names
    report.num_images = len(labels) if labels is not None else 0
    report.num_classes = len(all_classes or ())

    oxford_split = {}
    if setid is not None:
        oxford_split = _check_setid(reader, setid, report.num_images)
        report.oxford_counts = {k: len(v) for k, v in setid.items()}
    _check_class_lists(reader, all_classes, lists, labels)
    image_modes = _check_images(reader, report.num_images)
    report.image_modes = dict(collections.Counter(image_modes.values()))

    captions = {}
    if labels is not None:
        class_ids = {
            class_id_of(name)
            for split in ("trainval", "test")
            for name in lists.get(split, ())
        }
        captions = _check_captions(reader, labels, class_ids)
    report.non_ascii_captions = sum(
        not caption.isascii()
        for texts in captions.values()
        for caption in texts
    )
    _count(report, lists, labels, captions, expect_full, reader)
    if "trainval" in lists and "train" in lists and "val" in lists:
        rest = set(lists["trainval"]) - set(lists["train"]) - set(lists["val"])
        if rest:
            report.notes.append(
                f"{_plural(len(rest), 'trainval class')} in neither "
                f"{CLASS_LIST_FILES['train']} nor {CLASS_LIST_FILES['val']} "
                f"({_some(sorted(rest))})"
            )

    report.files = sorted(reader.files, key=lambda entry: entry.path)
    report.problems = reader.problems
    if not report.problems:
        label_of = dict(enumerate(labels.tolist(), start=1))
        split_images = {}
        for split, names in lists.items():
            class_ids = {class_id_of(name) for name in names}
            split_images[split] = sorted(
                i for i, c in label_of.items() if c in class_ids
            )
        report.download = Download(
            labels=label_of,
            oxford_split=oxford_split,
            class_lists=lists,
            split_images=split_images,
            captions=captions,
            image_modes=image_modes,
        )
    return report
