"""Helpers for the flowers tests: reading a download and breaking it."""

import io

import scipy.io
from PIL import Image

from data_builders.oxford_flowers_captions import layout

# 10 classes x 2 images: train 6 classes, val 2, test 2.
SYNTHETIC = dict(num_classes=10, num_images_per_class=2, image_size=48, seed=3)


def labels(root):
    """The 1-based class id of each image, from imagelabels.mat."""
    labels = scipy.io.loadmat(root / layout.LABELS_FILE)["labels"]
    return labels.ravel().astype(int)


def setid(root):
    """trnid / valid / tstid -> image ids, from setid.mat."""
    contents = scipy.io.loadmat(root / layout.SETID_FILE)
    return {key: contents[key].ravel() for key in layout.OXFORD_SPLITS}


def class_list(root, split):
    """The class folder names of a split's class list."""
    path = root / layout.CLASS_LIST_FILES[split]
    return path.read_text(encoding="utf-8").split()


def split_image_ids(root, split):
    """Image ids of a split's classes, sorted, from the files themselves."""
    class_ids = {
        int(name.removeprefix("class_")) for name in class_list(root, split)
    }
    return [
        image_id
        for image_id, class_id in enumerate(labels(root).tolist(), start=1)
        if class_id in class_ids
    ]


def first_test_image(root):
    """(image id, class id) of the first image of the test classes."""
    image_id = split_image_ids(root, "test")[0]
    return image_id, int(labels(root)[image_id - 1])


def caption_path(root, image_id):
    """The caption file of an image (found through its label)."""
    class_id = int(labels(root)[image_id - 1])
    return root / layout.caption_file(class_id, image_id)


def jpeg_bytes(image, **save_args):
    """A Pillow image saved as JPEG."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def without_adobe_marker(data):
    """The JPEG without its APP14 "Adobe" segment (a plain CMYK JPEG)."""
    out, i = bytearray(data[:2]), 2
    while data[i : i + 2] != b"\xff\xda":
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i : i + 2] != b"\xff\xee":
            out += data[i : i + 2 + length]
        i += 2 + length
    return bytes(out + data[i:])


def leftovers(data_dir):
    """Files a failed build left in data_dir (tfds' .config note aside)."""
    return [
        path
        for path in data_dir.rglob("*")
        if path.is_file() and ".config" not in path.parts
    ]


# Each breaker damages a download and returns a text its message must hold.


def missing_jpg(root):
    image_id, _ = first_test_image(root)
    (root / layout.image_file(image_id)).unlink()
    return f"{layout.image_file(image_id)}: missing"


def missing_caption_file(root):
    image_id, class_id = first_test_image(root)
    (root / layout.caption_file(class_id, image_id)).unlink()
    return f"{layout.caption_file(class_id, image_id)}: missing"


def missing_caption_folder(root):
    _, class_id = first_test_image(root)
    folder = root / layout.CAPTION_DIR / layout.class_name(class_id)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return f"text_c10/{layout.class_name(class_id)}/: missing directory"


def missing_labels_key(root):
    values = labels(root)
    scipy.io.savemat(root / layout.LABELS_FILE, {"lables": values[None, :]})
    return "imagelabels.mat: has no variable labels (it holds lables)"


def missing_setid_key(root):
    contents = setid(root)
    del contents["tstid"]
    scipy.io.savemat(
        root / layout.SETID_FILE, {k: v[None, :] for k, v in contents.items()}
    )
    return "setid.mat: has no variable tstid"


def corrupt_mat(root):
    (root / layout.SETID_FILE).write_bytes(b"MATLAB 5.0 MAT-file, cut")
    return "setid.mat: not a readable .mat file"


def label_out_of_range(root):
    values = labels(root).copy()
    values[0] = 103
    scipy.io.savemat(root / layout.LABELS_FILE, {"labels": values[None, :]})
    return "imagelabels.mat: labels holds 103, but Oxford-102's classes are"


def unknown_class(root):
    path = root / layout.CLASS_LIST_FILES["test"]
    path.write_text(path.read_text() + "class_00077\n")
    return "testclasses.txt: class_00077 is not a class of allclasses.txt"


def malformed_class_line(root):
    path = root / layout.CLASS_LIST_FILES["trainval"]
    path.write_text("class_1\n" + path.read_text())
    return "trainvalclasses.txt: line 1 ('class_1') is not a class folder name"


def class_in_trainval_and_test(root):
    shared = class_list(root, "train")[0]
    path = root / layout.CLASS_LIST_FILES["test"]
    path.write_text(path.read_text() + f"{shared}\n")
    return (
        f"testclasses.txt: 1 class also in trainvalclasses.txt ({shared}); "
        "the caption splits must be class-disjoint"
    )


def image_in_no_oxford_split(root):
    contents = setid(root)
    dropped = int(contents["tstid"][0])
    contents["tstid"] = contents["tstid"][1:]
    scipy.io.savemat(
        root / layout.SETID_FILE, {k: v[None, :] for k, v in contents.items()}
    )
    return (
        "setid.mat: 1 image in none of trnid, valid, tstid "
        f"({layout.image_name(dropped)})"
    )


def truncated_jpeg(root):
    image_id, _ = first_test_image(root)
    path = root / layout.image_file(image_id)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return f"{layout.image_file(image_id)}: truncated"


def png_named_jpg(root):
    image_id = split_image_ids(root, "train")[0]
    Image.new("RGB", (5, 5)).save(root / layout.image_file(image_id), "PNG")
    return f"{layout.image_file(image_id)}: not a JPEG"


def caption_not_utf8(root):
    image_id, class_id = first_test_image(root)
    path = root / layout.caption_file(class_id, image_id)
    path.write_bytes("a flower with p\u00e9tals\n".encode("latin-1"))
    return f"{layout.caption_file(class_id, image_id)}: not UTF-8 text"


def empty_caption_file(root):
    image_id, class_id = first_test_image(root)
    (root / layout.caption_file(class_id, image_id)).write_text("\n \n\r\n")
    return (
        f"{layout.caption_file(class_id, image_id)}: holds no caption "
        "(empty or only blank lines)"
    )


def reed_archive_one_folder_deep(root):
    nested = root / layout.REED_ARCHIVE_DIR
    nested.mkdir()
    (root / layout.CAPTION_DIR).rename(nested / layout.CAPTION_DIR)
    return (
        "text_c10/: missing directory (found under cvpr2016_flowers/: move "
        "that folder's contents up into the manual directory)"
    )


BREAKERS = [
    missing_jpg,
    missing_caption_file,
    missing_caption_folder,
    missing_labels_key,
    missing_setid_key,
    corrupt_mat,
    label_out_of_range,
    unknown_class,
    malformed_class_line,
    class_in_trainval_and_test,
    image_in_no_oxford_split,
    truncated_jpeg,
    png_named_jpg,
    caption_not_utf8,
    empty_caption_file,
    reed_archive_one_folder_deep,
]
