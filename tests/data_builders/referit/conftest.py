"""Shared fixtures: a small synthetic download in ReferIt's file layout."""

import shutil

import pytest

from data_builders.referit import synthetic
from tests.data_builders.referit.downloads import COUNTS, SEED


@pytest.fixture(scope="session")
def synthetic_download(tmp_path_factory):
    """(directory, write_dataset's summary), written once per worker."""
    root = tmp_path_factory.mktemp("referit") / "download"
    summary = synthetic.write_dataset(root, seed=SEED, **COUNTS)
    return root, summary


@pytest.fixture
def download_copy(synthetic_download, tmp_path):
    """A private copy of the synthetic download, free to break."""
    source, _ = synthetic_download
    target = tmp_path / "download"
    shutil.copytree(source, target)
    return target
