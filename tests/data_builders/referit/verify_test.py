"""Tests of `python -m data_builders.referit.verify`: manifest and failures."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from data_builders.referit import layout, verify
from tests.data_builders.referit.downloads import read_json, write_json

_MANIFEST_LINE = re.compile(r"^[0-9a-f]{64}  \S+$")
_REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(capsys, *args):
    status = verify.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _first_test_region(root):
    return next(iter(read_json(root, layout.query_file("test"))))


def _used_files(root, splits=layout.SPLITS):
    paths = set()
    for split in splits:
        paths |= {layout.query_file(split), layout.imlist_file(split)}
        for name in read_json(root, layout.query_file(split)):
            paths.add(layout.mask_file(name))
            paths.add(layout.image_file(layout.image_id_of(name)))
    shared = (
        layout.VOCABULARY_FILE,
        layout.IMCROP_FILE,
        layout.BBOX_FILE,
        layout.IMSIZE_FILE,
    )
    return paths | set(shared)


def _check_manifest(root, lines, splits=layout.SPLITS):
    assert all(_MANIFEST_LINE.match(line) for line in lines), lines[:3]
    paths = [line.split("  ", 1)[1] for line in lines]
    assert paths == sorted(paths)
    assert set(paths) == _used_files(root, splits)
    for line in lines:
        digest, path = line.split("  ", 1)
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == digest


def test_clean_download_passes_and_prints_the_manifest(
    synthetic_download, capsys
):
    root, summary = synthetic_download
    status, out, err = _run(capsys, f"--manual_dir={root}")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    manifest = [line for line in lines if _MANIFEST_LINE.match(line)]
    _check_manifest(root, manifest)
    assert lines[: len(manifest)] == manifest  # The summary comes after.
    assert lines[len(manifest)].startswith(f"ok: {root} holds")
    for split, counts in summary.items():
        assert (
            f"  {split}: {counts['images']:,} images, "
            f"{counts['regions']:,} regions, "
            f"{counts['expressions']:,} expressions; image list "
            f"{counts['imlist_images']:,} images"
        ) in out
    assert "full release 9,995 images / 59,976 expressions: not " in out
    assert "sha256 manifest: printed above" in out


def test_manifest_file_and_summary_on_stdout(
    synthetic_download, tmp_path, capsys
):
    root, _ = synthetic_download
    manifest = tmp_path / "referit.sha256"
    status, out, err = _run(
        capsys, f"--manual_dir={root}", f"--manifest={manifest}", "--split=test"
    )
    assert (status, err) == (0, "")
    _check_manifest(root, manifest.read_text().splitlines(), ["test"])
    assert not any(_MANIFEST_LINE.match(line) for line in out.splitlines())
    assert f"sha256 manifest: {manifest}" in out
    assert "  test: " in out and "  trainval: " not in out


def _missing_mask(root):
    name = _first_test_region(root)
    (root / layout.mask_file(name)).unlink()
    return f"{layout.mask_file(name)}: missing"


def _missing_image(root):
    image_id = layout.image_id_of(_first_test_region(root))
    (root / layout.image_file(image_id)).unlink()
    return f"{layout.image_file(image_id)}: missing"


def _corrupt_json(root):
    name = layout.query_file("test")
    (root / name).write_text('{"1_1": ["the red')
    return f"{name}: not valid JSON"


def _truncated_jpeg(root):
    path = layout.image_file(layout.image_id_of(_first_test_region(root)))
    data = (root / path).read_bytes()
    (root / path).write_bytes(data[: len(data) // 2])
    return f"{path}: truncated"


def _wrong_imsize(root):
    image_id = layout.image_id_of(_first_test_region(root))
    sizes = read_json(root, layout.IMSIZE_FILE)
    width, height = sizes[f"{image_id}.jpg"]
    sizes[f"{image_id}.jpg"] = [width + 1, height]
    write_json(root, layout.IMSIZE_FILE, sizes)
    return (
        f"{layout.IMSIZE_FILE}: {image_id}.jpg is {width + 1} x {height} "
        f"there but {layout.image_file(image_id)} is {width} x {height}"
    )


def _mask_without_segimg_t(root):
    name = _first_test_region(root)
    scipy.io.savemat(root / layout.mask_file(name), {"mask": np.zeros((2, 2))})
    return f"{layout.mask_file(name)}: has no variable segimg_t"


def _mask_of_another_shape(root):
    name = _first_test_region(root)
    path = root / layout.mask_file(name)
    segmentation = scipy.io.loadmat(path)["segimg_t"]
    scipy.io.savemat(path, {"segimg_t": segmentation[1:]})
    return f"{layout.mask_file(name)}: segimg_t is"


def _region_not_in_imcrop(root):
    name = _first_test_region(root)
    imcrops = read_json(root, layout.IMCROP_FILE)
    key = f"{layout.image_id_of(name)}.jpg"
    imcrops[key] = [n for n in imcrops[key] if n != name]
    write_json(root, layout.IMCROP_FILE, imcrops)
    return f"{layout.IMCROP_FILE}: {name} (in referit_query_test.json)"


def _bad_vocabulary(root):
    path = root / layout.VOCABULARY_FILE
    path.write_text(path.read_text().replace("<go>\n", "", 1))
    return f"{layout.VOCABULARY_FILE}: lines 1-4 must be <pad>, <go>"


@pytest.mark.parametrize(
    "breaker",
    [
        _missing_mask,
        _missing_image,
        _corrupt_json,
        _truncated_jpeg,
        _wrong_imsize,
        _mask_without_segimg_t,
        _mask_of_another_shape,
        _region_not_in_imcrop,
        _bad_vocabulary,
    ],
)
def test_a_broken_file_exits_2_naming_it_in_one_line(
    download_copy, capsys, breaker
):
    expected = breaker(download_copy)
    status, out, err = _run(capsys, f"--manual_dir={download_copy}")
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"error: 1 problem in the ReferIt download at {download_copy}: "
    )
    assert expected in err
    assert err.rstrip().endswith(f"--manual_dir={download_copy}")


def test_many_problems_show_the_first_five_and_the_count(download_copy, capsys):
    masks = sorted((download_copy / layout.MASK_DIR).iterdir())
    for path in masks:
        path.unlink()
    used = sum(p.startswith("mask/") for p in _used_files(download_copy))
    status, _, err = _run(capsys, f"--manual_dir={download_copy}")
    assert status == 2 and len(err.splitlines()) == 1
    assert f"error: {used:,} problems in the ReferIt download" in err
    assert err.count(": missing") == 5
    assert f"and {used - 5:,} more" in err


def test_counts_are_held_against_the_release_only_when_full(
    synthetic_download, capsys, monkeypatch
):
    root, summary = synthetic_download
    status, _, err = _run(capsys, f"--manual_dir={root}", "--expect_full")
    assert status == 2 and len(err.splitlines()) == 1
    trainval = summary["trainval"]
    assert (
        f"referit_query_trainval.json: {trainval['expressions']:,} "
        f"expressions on {trainval['images']:,} images, but Hu et al.'s "
        "release has 59,976 on 9,995"
    ) in err
    assert "60,105 on 9,994" in err
    assert "vocabulary_referit.txt: 21 tokens, but" in err

    # A query file as large as the release's is taken for the release.
    monkeypatch.setattr(layout, "FULL_RELEASE_MIN_IMAGES", 1)
    status, _, err = _run(capsys, f"--manual_dir={root}", "--split=test")
    assert status == 2 and "60,105 on 9,994" in err
    assert "vocabulary" not in err  # Its size is checked on demand only.


def test_a_missing_directory_and_a_bad_split(tmp_path, capsys):
    status, _, err = _run(capsys, f"--manual_dir={tmp_path / 'nowhere'}")
    assert status == 2
    assert f"{tmp_path / 'nowhere'}: not a directory" in err
    with pytest.raises(SystemExit) as exit_info:
        verify.main([f"--manual_dir={tmp_path}", "--split=test,validation"])
    assert exit_info.value.code == 2
    assert "subset of train,val,trainval,test" in capsys.readouterr().err


@pytest.mark.multiprocess
def test_runs_as_a_module(download_copy):
    command = [sys.executable, "-m", "data_builders.referit.verify"]
    clean = subprocess.run(
        [*command, f"--manual_dir={download_copy}"],
        cwd=_REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0, clean.stderr
    assert f"ok: {download_copy} holds" in clean.stdout
    train_region = next(
        iter(read_json(download_copy, layout.query_file("train")))
    )
    image = layout.image_file(layout.image_id_of(train_region))
    Image.new("RGB", (5, 5)).save(download_copy / image, format="PNG")
    broken = subprocess.run(
        [*command, f"--manual_dir={download_copy}", "--split=train"],
        cwd=_REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 2
    # TensorFlow may log its own lines to stderr when imported.
    lines = broken.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1
    assert f"{image}: not a JPEG" in errors[0]
