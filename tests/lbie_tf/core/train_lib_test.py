"""Unit checks of the core training loop's small decisions."""

import io

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
