"""TensorFlow start-up without its native log noise on stderr."""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Sends file descriptor 2 to /dev/null inside the block.

    TensorFlow's C++ runtime writes start-up lines ("Could not find cuda
    drivers", oneDNN notices) straight to file descriptor 2 while it is
    imported, ignoring TF_CPP_MIN_LOG_LEVEL; silencing the import keeps a
    command's stderr to the lines it means to print. Python exceptions raised
    inside the block still propagate and are printed after it.
    """
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        # stderr is not a real file (a test harness captured it): nothing to do.
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(stderr_fd)
    devnull_fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull_fd, stderr_fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_fd, stderr_fd)
        os.close(saved_fd)
        os.close(devnull_fd)


def import_tensorflow_quietly():
    """Imports TensorFlow and Keras without the C++ start-up noise on stderr
    and returns (tensorflow, keras)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_silenced():
        import keras
        import tensorflow as tf
    return tf, keras
