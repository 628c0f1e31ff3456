"""Suite-wide pytest hooks, and the artefacts several test files share."""

import fcntl
import os
import shutil

import pytest

# The longest file (`--durations`: about 6 of the suite's 31 test-minutes
# on the quiet 2-core machine, three end-to-end checklists).
LONGEST_FILES = ("tests/task_checklist_test.py",)


def pytest_collection_modifyitems(session, config, items):
    """Runs the longest file first, then the files with end-to-end (`slow`)
    tests, those with more of them earlier, keeping the collection order
    otherwise.

    `pytest -n 2 --dist=loadfile --no-loadscope-reorder` (`make test`)
    hands whole files to the two workers in this order (without the last
    flag xdist sorts the files by their number of tests, and the 3-test
    checklist, collected last, left one worker idle for minutes at the
    end).
    """
    root = config.rootpath
    slow = {}
    for item in items:
        if item.get_closest_marker("slow") is not None:
            slow[item.path] = slow.get(item.path, 0) + 1
    position = {}
    for index, item in enumerate(items):
        position.setdefault(item.path, index)

    def key(item):
        relative = item.path.relative_to(root).as_posix()
        return (
            relative not in LONGEST_FILES,
            -slow.get(item.path, 0),
            position[item.path],
        )

    items.sort(key=key)


def built_once(tmp_path_factory, name, build):
    """The directory `build(path)` fills, built once per test run.

    Under pytest-xdist every worker has its own session fixtures; the
    directory lives in the base temporary directory the workers share, and
    a file lock lets the first worker that needs it build it while the
    others wait. The tests that use it only read it.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    root = base / "built_once"
    root.mkdir(exist_ok=True)
    target, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


@pytest.fixture(scope="session")
def pretrained_cosal_export(tmp_path_factory):
    """The shipped CoSaL d4 model, exported through `experiments.export`."""
    from tests.experiments import serve_helpers

    return built_once(
        tmp_path_factory,
        "pretrained_cosal_export",
        lambda path: serve_helpers.export(serve_helpers.PRETRAINED, path),
    )


@pytest.fixture(scope="session")
def referit_smoke_run(tmp_path_factory):
    """(workdir, export dir) of the ReferIt smoke config's LBIE model,
    trained and exported in this process."""

    def build(root):
        from experiments.configs import referit_smoke
        from lbie_tf import tasks  # noqa: F401
        from lbie_tf.core import export_lib, train_lib

        config = referit_smoke.get_config("lbie")
        config.data.data_dir = str(root / "data")
        train_lib.train_and_evaluate(config, root / "run")
        export_lib.export_model(root / "run", root / "export")

    root = built_once(tmp_path_factory, "referit_smoke_run", build)
    return root / "run", root / "export"
