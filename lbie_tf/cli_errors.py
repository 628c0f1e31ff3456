"""Errors caused by what a user passed, reported by the CLIs as one line."""

import contextlib
import os
import sys

# Exit status of a command that was given bad input. 2 is the Unix convention
# for usage errors (argparse and absl flag parsing use it too), so scripts can
# tell "you passed something wrong" apart from a crash (1) or success (0).
EXIT_USER_ERROR = 2


class UserError(ValueError):
    """Something the user passed cannot be used; the message says what and
    what is accepted. The CLIs print it as one line, without a traceback.

    A ValueError, so that library callers can catch bad arguments the usual
    way.
    """


class UsageError(UserError):
    """A missing or malformed command-line option."""


class TextError(UserError):
    """A CoSaL description with unknown words or the wrong sentence count or
    length."""


class ImageError(UserError):
    """An input image that is missing, unreadable, of the wrong size or of the
    wrong mode."""


class ModelFileError(UserError):
    """A model path that is missing or does not hold a readable Keras model."""


class OutputError(UserError):
    """An output path that cannot be written."""


def one_line(message):
    """Returns `message` as a single line (runs of white space become one)."""
    return " ".join(str(message).split())


def exit_on_user_error(function, *args, **kwargs):
    """Calls `function`; a `UserError` becomes `error: <message>` on stderr and
    exit status `EXIT_USER_ERROR`. Any other exception propagates unchanged,
    because it is a bug whose traceback the user should report."""
    try:
        return function(*args, **kwargs)
    except UserError as error:
        sys.stdout.flush()
        sys.stderr.write(f"error: {one_line(error)}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_USER_ERROR) from None


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
