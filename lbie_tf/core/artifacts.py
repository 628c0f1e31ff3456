"""Atomic writes, the workdir layout and model loading with one error
translation."""

import contextlib
import json
import os
import shutil
import tempfile
import zipfile

from lbie_tf.core import errors, runtime

MODEL_FILE_NAME = "model.keras"
CONFIG_FILE_NAME = "config.json"
EVAL_FILE_NAME = "eval.json"
TASK_FILE_NAME = "task.json"
# Keras reports a broken archive with any of these, depending on which part of
# the file is damaged; anything else is a bug and keeps its traceback.
_MODEL_LOAD_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    json.JSONDecodeError,
)
# The archive member of `save_model` that holds the SeedGenerator states.
SEED_STATES_MEMBER = "lbie_seed_generators.json"
# A workdir needs room for a few checkpoints and the final model.
MIN_FREE_BYTES = 64 * 1024 * 1024


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yields a temporary path beside `path`; renames it over `path` when the
    block ends without an exception, removes it otherwise.

    The one way every artefact is written. A rename within one file system
    is atomic, so `path` only ever holds a complete file (or its previous
    content), whatever happens mid-write, `kill -9` included; the content
    is flushed to disk before the rename, so that a power cut cannot leave
    a renamed but empty file either. The temporary name starts with a dot
    and ends in `suffix` (a `.keras` file needs that ending to be saved).
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=suffix, dir=directory
    )
    os.close(descriptor)
    try:
        yield temporary
        _fsync(temporary)
        # mkstemp makes the file private (0600); an artefact gets the mode
        # any new file would, so that others can read a shared workdir.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask():
    """The process's umask, read without changing it (`os.umask` can only
    be read by setting it, which other threads would see)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
    return path


def write_bytes(path, data):
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            file.write(data)
    return path


def write_json(path, value):
    """Writes `value` as indented JSON to `path` atomically."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path, what):
    """Reads a JSON file; a missing or corrupt one is a ModelFileError that
    names `what` it should have been."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise errors.ModelFileError(f"{what} not found: {path!r}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.ModelFileError(
            f"corrupt {what} {path!r} ({errors.one_line(error)}); rerun the "
            "command that wrote it or restore the file."
        ) from None


def save_model(model, path):
    """Saves a Keras model through `atomic_path`, so that `path` never holds
    a half-written one, with its SeedGenerator states.

    Keras's `.keras` format leaves SeedGenerator states out (they are not
    weights), so a loaded model would draw its random numbers from the
    start again; they go into the archive as one more member, which
    `restore_seed_generators` reads and Keras ignores.
    """
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(
                SEED_STATES_MEMBER,
                json.dumps(seed_generator_states(model), sort_keys=True),
            )
    return path


def _seed_generators(model):
    """{key: SeedGenerator} of every layer of `model`, keyed by the layer's
    path (stable across processes, unlike the generators' variable names).
    """
    generators = {}
    for layer in model._flatten_layers(include_self=True):
        for index, generator in enumerate(layer._seed_generators):
            generators[f"{layer.path}#{index}"] = generator
    return generators


def seed_generator_states(model):
    """{key: [seed, counter]} of every SeedGenerator of `model`."""
    return {
        key: [int(value) for value in generator.state.numpy()]
        for key, generator in _seed_generators(model).items()
    }


def restore_seed_generators(model, path, strict=True):
    """Sets `model`'s SeedGenerator states to those `save_model` stored in
    the `.keras` file `path` and returns how many it set (0 for a file
    without them, e.g. one written by `model.save`).

    Args:
      strict: raise if the stored generators are not exactly the model's
        (resuming training); False sets those that match (a model loaded
        to run, whose random numbers do not matter).

    Raises:
      ModelFileError: if `strict` and the stored generators are not the
        model's.
    """
    with zipfile.ZipFile(path) as archive:
        if SEED_STATES_MEMBER not in archive.namelist():
            return 0
        stored = json.loads(archive.read(SEED_STATES_MEMBER))
    generators = _seed_generators(model)
    if strict and set(stored) != set(generators):
        raise errors.ModelFileError(
            f"model file {path!r} stores the random-number states of "
            f"{sorted(stored)}, but the model has {sorted(generators)}; "
            "it was written by another model."
        )
    restored = 0
    for key, generator in generators.items():
        if key in stored:
            generator.state.assign(stored[key])
            restored += 1
    return restored


@contextlib.contextmanager
def staged_directory(directory, allowed_entries):
    """Yields a staging directory that replaces `directory` at the end.

    An existing `directory` is replaced only if it holds nothing but
    `allowed_entries` (an earlier artefact of the same kind), so nothing
    unrelated is deleted; on an exception the staging directory goes and
    the old directory stays.
    """
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory):
        if not os.path.isdir(directory):
            raise errors.OutputError(
                f"{directory!r} is a file; pass a directory that does not "
                "exist yet or holds an earlier export."
            )
        extra = sorted(set(os.listdir(directory)) - set(allowed_entries))
        if extra:
            raise errors.OutputError(
                f"directory {directory!r} holds other files "
                f"({', '.join(extra[:5])}); pass a directory that does not "
                "exist yet, is empty, or holds an earlier export."
            )
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(
        prefix=f".{os.path.basename(directory)}.", suffix=".tmp", dir=parent
    )
    retired = None
    try:
        yield staging
        if os.path.exists(directory):
            retired = staging + ".old"
            os.rename(directory, retired)
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not os.path.exists(directory):
            os.rename(retired, directory)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def prepare_workdir(workdir, min_free_bytes=MIN_FREE_BYTES):
    """Creates `workdir` and checks it can be written before any training.

    On failure the directories it created are removed again, so that a
    refused run leaves nothing behind.

    Raises:
      OutputError: if it cannot be created, is not writable, or its file
        system has less than `min_free_bytes` free.
    """
    workdir = os.path.abspath(os.path.expanduser(os.fspath(workdir)))
    created = []
    missing = workdir
    while not os.path.lexists(missing) and missing != os.path.dirname(missing):
        created.append(missing)
        missing = os.path.dirname(missing)
    try:
        os.makedirs(workdir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".probe-"):
            pass
        stats = os.statvfs(workdir)
    except OSError as error:
        _remove_directories(created)
        raise errors.OutputError(
            f"workdir {workdir!r} cannot be written "
            f"({errors.one_line(error)}); pass a --workdir you can write to."
        ) from None
    free = stats.f_bavail * stats.f_frsize
    if free < min_free_bytes:
        _remove_directories(created)
        raise errors.OutputError(
            f"workdir {workdir!r} has only {free / 2**20:.1f} MiB free; "
            f"training needs at least {min_free_bytes / 2**20:.1f} MiB. "
            "Free space or pass another --workdir."
        )
    return workdir


def _remove_directories(directories):
    """Removes `directories` (deepest first) while they are empty."""
    for directory in directories:
        try:
            os.rmdir(directory)
        except OSError:
            return


def check_output_path(path, flag_name="--out", suffix=".png"):
    """Checks that a file can be written at `path` without writing anything.

    Raises:
      OutputError: if the name does not end in `suffix` (None: any name),
        names a directory, or its directory does not exist or is not
        writable.
    """
    path = os.fspath(path)
    if suffix is not None and not path.lower().endswith(suffix):
        raise errors.OutputError(
            f"{flag_name}={path!r} must name a {suffix} file."
        )
    if os.path.isdir(path):
        raise errors.OutputError(
            f"{flag_name}={path!r} is a directory; pass a "
            f"{suffix or ''} file name.".replace("a  ", "a ")
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise errors.OutputError(
            f"{flag_name}={path!r}: directory {directory!r} does not exist."
        )
    if not os.access(directory, os.W_OK):
        raise errors.OutputError(
            f"{flag_name}={path!r}: directory {directory!r} is not writable."
        )
    return path


def resolve_model_path(path):
    """Returns the `.keras` file that `path` names.

    Args:
      path: a `.keras` file, a training workdir or an export directory (both
        hold `model.keras`).

    Raises:
      ModelFileError: if nothing usable is there.
    """
    accepted = (
        "pass a .keras file, a training workdir or an export directory "
        f"that holds {MODEL_FILE_NAME}"
    )
    path = os.fspath(path)
    if not os.path.exists(path):
        raise errors.ModelFileError(
            f"model not found: {path!r} does not exist; {accepted}."
        )
    if os.path.isdir(path):
        candidate = os.path.join(path, MODEL_FILE_NAME)
        if not os.path.isfile(candidate):
            raise errors.ModelFileError(
                f"directory {path!r} has no {MODEL_FILE_NAME}; {accepted}."
            )
        return candidate
    if not path.endswith(".keras"):
        raise errors.ModelFileError(
            f"model file {path!r} is not a .keras file; {accepted}."
        )
    return path


def read_model_archive_config(path):
    """Checks that `path` is a readable `.keras` archive without loading it
    and returns its config.json content.

    Catches missing, truncated and non-Keras files before TensorFlow starts.

    Raises:
      ModelFileError: naming the problem.
    """
    expected = "expected a .keras archive written by keras.Model.save"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise errors.ModelFileError(
                    f"corrupt model file {path!r}: the archive has no "
                    f"config.json; {expected}."
                )
            bad_member = archive.testzip()
            if bad_member is not None:
                raise errors.ModelFileError(
                    f"corrupt model file {path!r}: {bad_member} is damaged; "
                    f"{expected}."
                )
            return json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise errors.ModelFileError(
            f"corrupt model file {path!r}: not a readable zip archive "
            f"({errors.one_line(error)}); {expected}."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise errors.ModelFileError(
            f"corrupt model file {path!r}: config.json is not valid JSON; "
            f"{expected}."
        ) from None


def load_model(path, compile=False, what="an lbie-tf model"):
    """Loads a Keras model from a `.keras` file, a workdir or an export.

    The task's layers must be registered (import the task first).

    Raises:
      ModelFileError: if the path is missing or the file is not a model.
    """
    model_path = resolve_model_path(path)
    read_model_archive_config(model_path)
    _, keras = runtime.import_tensorflow_quietly()

    try:
        model = keras.saving.load_model(model_path, compile=compile)
    except _MODEL_LOAD_ERRORS as error:
        message = errors.one_line(error)
        if len(message) > 300:
            message = message[:300] + "..."
        raise errors.ModelFileError(
            f"cannot load model {model_path!r} ({message}); expected a "
            f".keras archive of {what} written by keras.Model.save."
        ) from None
    restore_seed_generators(model, model_path, strict=False)
    return model


def read_run_config(directory):
    """The resolved config a training run wrote (config.json) as a
    ConfigDict.

    Raises:
      ModelFileError: if `directory` has no readable config.json.
    """
    import ml_collections

    path = os.path.join(os.fspath(directory), CONFIG_FILE_NAME)
    if not os.path.isfile(path):
        raise errors.ModelFileError(
            f"No training config at {path}; --workdir must be a directory "
            "written by `python -m experiments.train`."
        )
    return ml_collections.ConfigDict(read_json(path, "training config"))
