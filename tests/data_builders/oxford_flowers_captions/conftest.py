"""Shared fixtures: a small synthetic download in the flowers file layout."""

import shutil

import pytest

from data_builders.oxford_flowers_captions import synthetic
from tests.data_builders.oxford_flowers_captions.downloads import SYNTHETIC


@pytest.fixture(scope="session")
def synthetic_download(tmp_path_factory):
    """(directory, write_synthetic_download's summary), written once."""
    root = tmp_path_factory.mktemp("flowers") / "download"
    summary = synthetic.write_synthetic_download(root, **SYNTHETIC)
    return root, summary


@pytest.fixture
def download_copy(synthetic_download, tmp_path):
    """A private copy of the synthetic download, free to break."""
    source, _ = synthetic_download
    target = tmp_path / "download"
    shutil.copytree(source, target)
    return target
