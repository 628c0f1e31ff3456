"""Errors caused by what a user passed; the CLIs print them as one line."""


class UserError(ValueError):
    """Something the user passed cannot be used; the message says what and
    what is accepted. The CLIs print it as one line, without a traceback.

    A ValueError, so that library callers can catch bad arguments the usual
    way.
    """


class UsageError(UserError):
    """A missing or malformed option, or a config field no builder accepts
    (the message names the field)."""


class TextError(UserError):
    """A description the task's tokenizer cannot use."""


class ImageError(UserError):
    """An input image that is missing, unreadable, too large, of the wrong
    size or of the wrong mode."""


class ModelFileError(UserError):
    """A model path that is missing or does not hold a readable model."""


class OutputError(UserError):
    """An output path or workdir that cannot be written."""


class TrainingDivergedError(UserError, RuntimeError):
    """The training loss (or a weight) became NaN or Inf; the message names
    the step and the backup that was kept.

    Not a bad argument as such, but a setting (usually the learning rate)
    to change, so the CLIs print it as one line with exit status 2 like
    every UserError; it stays a RuntimeError for callers that catch that.
    """


def one_line(message):
    """Returns `message` as a single line (runs of white space become one)."""
    return " ".join(str(message).split())
