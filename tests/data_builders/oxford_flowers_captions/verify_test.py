"""Tests of `python -m data_builders.oxford_flowers_captions.verify`."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from data_builders.oxford_flowers_captions import layout, verify
from tests.data_builders.oxford_flowers_captions import downloads

_MANIFEST_LINE = re.compile(r"^[0-9a-f]{64}  \S+$")
_REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(capsys, *args):
    status = verify.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _used_files(root):
    paths = {
        layout.LABELS_FILE,
        layout.SETID_FILE,
        layout.ALL_CLASSES_FILE,
        *layout.CLASS_LIST_FILES.values(),
    }
    labels = downloads.labels(root)
    for image_id, class_id in enumerate(labels.tolist(), start=1):
        paths.add(layout.image_file(image_id))
        paths.add(layout.caption_file(int(class_id), image_id))
    return paths


def _check_manifest(root, lines):
    assert all(_MANIFEST_LINE.match(line) for line in lines), lines[:3]
    paths = [line.split("  ", 1)[1] for line in lines]
    assert paths == sorted(paths)
    assert set(paths) == _used_files(root)
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
            f"  {split}: {counts['classes']} classes, {counts['images']} "
            f"images, {counts['captions']} captions"
        ) in out
    assert "Reed et al.'s 82 classes: not compared (a subset" in out
    assert "8,189 images / 102 classes: not compared" in out
    assert "sha256 manifest: printed above" in out
    assert "JPEG modes: " in out


def test_images_with_fewer_captions_are_reported(download_copy, capsys):
    image_id, _ = downloads.first_test_image(download_copy)
    path = downloads.caption_path(download_copy, image_id)
    path.write_text("one caption\n\ntwo captions\n", encoding="utf-8")
    status, out, _ = _run(capsys, f"--manual_dir={download_copy}")
    assert status == 0
    lines = [line for line in out.splitlines() if "fewer than 10" in line]
    assert any(layout.image_name(image_id) in line for line in lines), lines
    assert all(line.endswith(".jpg") and "(accepted)" in line for line in lines)


def test_non_ascii_captions_are_counted(download_copy, capsys):
    image_id, _ = downloads.first_test_image(download_copy)
    path = downloads.caption_path(download_copy, image_id)
    path.write_text("a p\u00e9tale\nplain\n", encoding="utf-8")
    status, out, _ = _run(capsys, f"--manual_dir={download_copy}")
    assert status == 0
    assert "  1 captions hold non-ASCII characters (kept as written)" in out


def test_manifest_file_and_summary_on_stdout(
    synthetic_download, tmp_path, capsys
):
    root, _ = synthetic_download
    manifest = tmp_path / "flowers.sha256"
    status, out, err = _run(
        capsys, f"--manual_dir={root}", f"--manifest={manifest}"
    )
    assert (status, err) == (0, "")
    _check_manifest(root, manifest.read_text().splitlines())
    assert not any(_MANIFEST_LINE.match(line) for line in out.splitlines())
    assert f"sha256 manifest: {manifest}" in out


@pytest.mark.parametrize("breaker", downloads.BREAKERS)
def test_a_broken_file_exits_2_naming_it_in_one_line(
    download_copy, capsys, breaker
):
    expected = breaker(download_copy)
    status, out, err = _run(capsys, f"--manual_dir={download_copy}")
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        "error: 1 problem in the Oxford-102 flowers download at "
        f"{download_copy}: "
    ) or re.match(r"error: \d problems in the Oxford-102", err), err
    assert expected in err
    assert err.rstrip().endswith(f"--manual_dir={download_copy}")


def test_many_problems_show_the_first_five_and_the_count(download_copy, capsys):
    captions = sorted((download_copy / layout.CAPTION_DIR).rglob("*.txt"))
    for path in captions:
        path.unlink()
    status, _, err = _run(capsys, f"--manual_dir={download_copy}")
    assert status == 2 and len(err.splitlines()) == 1
    count = len(captions)
    assert f"error: {count} problems in the Oxford-102 flowers download" in err
    assert err.count(": missing") == 5
    assert f"and {count - 5} more" in err


def test_expect_full_holds_the_counts(synthetic_download, capsys):
    root, _ = synthetic_download
    status, _, err = _run(capsys, f"--manual_dir={root}", "--expect_full")
    assert status == 2 and len(err.splitlines()) == 1
    assert "imagelabels.mat: labels 20 images, but Oxford-102 has 8,189" in err


def test_a_missing_directory(tmp_path, capsys):
    status, _, err = _run(capsys, f"--manual_dir={tmp_path / 'nowhere'}")
    assert status == 2
    assert f"{tmp_path / 'nowhere'}: not a directory" in err


@pytest.mark.multiprocess
def test_runs_as_a_module(download_copy, tmp_path):
    command = [
        sys.executable,
        "-m",
        "data_builders.oxford_flowers_captions.verify",
    ]
    manifest = tmp_path / "flowers.sha256"
    clean = subprocess.run(
        [*command, f"--manual_dir={download_copy}", f"--manifest={manifest}"],
        cwd=_REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0, clean.stderr
    assert f"ok: {download_copy} holds" in clean.stdout
    _check_manifest(download_copy, manifest.read_text().splitlines())
    # The manifest is sha256sum's format.
    if sys.platform.startswith("linux"):
        checked = subprocess.run(
            ["sha256sum", "--check", "--quiet", str(manifest)],
            cwd=download_copy,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

    expected = downloads.missing_caption_file(download_copy)
    broken = subprocess.run(
        [*command, f"--manual_dir={download_copy}"],
        cwd=_REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 2
    assert broken.stdout == ""
    assert "Traceback" not in broken.stderr
    # TensorFlow may log its own lines to stderr when imported.
    errors = [
        line for line in broken.stderr.splitlines() if line.startswith("error:")
    ]
    assert len(errors) == 1
    assert expected in errors[0]
