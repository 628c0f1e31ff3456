"""Unit checks of the core training loop's small decisions."""

import io
import time

import pytest
import tensorflow as tf

from lbie_tf.core import train_lib


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert train_lib.fit_verbosity(1) == 2
    assert train_lib.fit_verbosity(0) == 0
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert train_lib.fit_verbosity(1) == 1
    assert train_lib.fit_verbosity(2) == 2


def _log_epochs(log_dir, values):
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for step, value in values:
            tf.summary.scalar("epoch_test_accuracy", value, step=step)
            tf.summary.scalar("other_tag", 1.0, step=step)
    writer.close()


def test_epoch_metrics_join_the_pieces_of_a_resumed_run(tmp_path):
    log_dir = tmp_path / train_lib.TENSORBOARD_DIR_NAME / "train"
    # A first run logged epochs 1 and 2 (steps 0 and 1), its resumption
    # epoch 2 again (re-trained from a backup) and 3.
    _log_epochs(log_dir, [(0, 0.1), (1, 0.2)])
    time.sleep(0.01)
    _log_epochs(log_dir, [(1, 0.25), (2, 0.3)])
    assert len(list(log_dir.iterdir())) == 2
    metrics = train_lib.epoch_metrics(tmp_path)
    assert list(metrics) == ["test_accuracy"]
    assert list(metrics["test_accuracy"]) == [1, 2, 3]
    assert metrics["test_accuracy"] == pytest.approx({1: 0.1, 2: 0.25, 3: 0.3})


def test_epoch_metrics_of_a_run_without_logs_are_empty(tmp_path):
    assert train_lib.epoch_metrics(tmp_path) == {}
