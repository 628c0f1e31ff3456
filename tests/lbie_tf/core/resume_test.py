"""Tests that training survives `kill -9`, crashed saves, divergence and an
unusable workdir."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from lbie_tf import tasks  # noqa: F401 - registers the cosal task.
from lbie_tf.core import artifacts, callbacks, errors, train_lib

ROOT = pathlib.Path(__file__).parents[3]
SMOKE_CONFIG = "experiments/configs/cosal_smoke.py"
# 48 training images in batches of 8: 6 steps per epoch, 18 in all.
TRAIN_SIZE = 48
STEPS_PER_EPOCH = 6
EPOCHS = 3
# Kill once a backup of this step exists: the third step of epoch 2.
KILL_AFTER_STEP = 8
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One TFDS directory for the module: the tiny dataset is built once."""
    return tmp_path_factory.mktemp("tfds")


def train_command(cell, workdir, data_dir, *extra):
    return [
        sys.executable,
        "-m",
        "experiments.train",
        f"--config={SMOKE_CONFIG}:{cell}",
        f"--config.data.overrides.train_size={TRAIN_SIZE}",
        f"--config.train.epochs={EPOCHS}",
        "--config.train.backup_every_steps=1",
        # One evaluation, at the end (train_lib reuses it for eval.json).
        f"--config.train.eval_every_epochs={EPOCHS}",
        "--config.runtime.deterministic=True",
        f"--config.data.data_dir={data_dir}",
        f"--workdir={workdir}",
        *extra,
    ]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture
def processes():
    """The training processes a test starts; any still running when it
    ends (a failed assertion) are killed."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.log.close()


def start(processes, command, log_path):
    log = open(log_path, "w")  # noqa: SIM115 - closed by finish().
    process = subprocess.Popen(
        command, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT
    )
    process.log = log
    processes.append(process)
    return process


def finish(process, log_path):
    """Waits for `process` and returns its output; fails if it failed."""
    try:
        process.wait(timeout=TIMEOUT_S)
    finally:
        process.log.close()
    output = pathlib.Path(log_path).read_text()
    assert process.returncode == 0, output[-3000:]
    return output


def wait_for_backup(process, backup_dir, min_step):
    """Polls `backup_dir` until a backup of at least `min_step` exists."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        step, _ = callbacks.latest_backup(str(backup_dir))
        if step >= min_step:
            return step
        if process.poll() is not None:
            pytest.fail(f"training ended (status {process.returncode}) first")
        time.sleep(0.005)
    pytest.fail(f"no backup of step {min_step} after {TIMEOUT_S} s")


def register_cosal_objects():
    """Imports what registers the layers and losses of a saved CoSaL model
    (the task itself imports them only once it is built)."""
    from lbie_tf.cosal import losses, models  # noqa: F401


def final_state(workdir):
    """Every variable of a run's model.keras, in one fixed order: the
    model's variables (trainable and not, SeedGenerator states included)
    and the optimizer's, and the stored SeedGenerator states by layer."""
    register_cosal_objects()
    path = str(workdir / artifacts.MODEL_FILE_NAME)
    model = keras.saving.load_model(path)
    assert artifacts.restore_seed_generators(model, path) > 0
    assert len(model.variables) > len(model.trainable_weights)
    variables = list(model.variables) + list(model.optimizer.variables)
    return (
        [(v.path, v.numpy()) for v in variables],
        artifacts.seed_generator_states(model),
    )


def output_names(workdir):
    """The output names of a run's model.keras."""
    register_cosal_objects()
    model = keras.saving.load_model(str(workdir / artifacts.MODEL_FILE_NAME))
    return set(model.output)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("cell", ["paper_t4_attn_d4", "original_t4_attn_d4"])
def test_kill_mid_epoch_and_rerun_gives_bit_identical_weights(
    tmp_path, data_dir, processes, cell
):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "c")}
    uninterrupted = start(
        processes, train_command(cell, straight, data_dir), logs["a"]
    )
    # The second run starts once the first has built the shared dataset
    # (so that, as for a real first run and its rerun, only one of them
    # builds it: the weights must not depend on that); both then train
    # side by side.
    wait_for_backup(uninterrupted, straight / "backup", 1)
    victim = start(processes, train_command(cell, killed, data_dir), logs["b"])
    wait_for_backup(victim, killed / "backup", KILL_AFTER_STEP)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=TIMEOUT_S)
    assert victim.returncode == -signal.SIGKILL
    step, _ = callbacks.latest_backup(str(killed / "backup"))
    assert step % STEPS_PER_EPOCH and step < EPOCHS * STEPS_PER_EPOCH
    assert not (killed / artifacts.MODEL_FILE_NAME).exists()

    rerun = start(processes, train_command(cell, killed, data_dir), logs["c"])
    output = finish(rerun, logs["c"])
    assert f"(step {step})." in output and "Resuming from" in output
    assert "Resuming" not in finish(uninterrupted, logs["a"])

    expected, expected_seeds = final_state(straight)
    actual, actual_seeds = final_state(killed)
    assert len(actual) == len(expected)
    different = [
        name
        for (name, want), (_, got) in zip(expected, actual, strict=True)
        if not np.array_equal(want, got)
    ]
    assert not different, different
    assert actual_seeds == expected_seeds
    if cell.startswith("paper"):
        # The Gumbel gate drew noise in every step, so its counter moved
        # and the resumed run went on from the backed-up value.
        gate = actual_seeds["fusion/termination_gate#0"]
        assert gate[1] > 0
    else:
        # The original family trains its step logits with the mixture loss.
        assert "step_logits" in output_names(straight)
    evaluated = json.loads((killed / "eval.json").read_text())
    assert np.isfinite(evaluated["iou_shapes"])
    # The rerun removed what the kill left mid-save.
    for directory in (killed, killed / "backup"):
        assert not [n for n in os.listdir(directory) if n.startswith(".")]


def _tiny_model():
    inputs = keras.Input((2,))
    hidden = keras.layers.Dropout(0.5, seed=3)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def test_latest_backup_ignores_partial_files(tmp_path):
    for name in ("step-00000003.keras", "step-00000005.keras"):
        (tmp_path / name).write_bytes(b"complete")
    # What killed saves leave: the old and the current temporary names.
    partial = [
        ".tmp-123-step-00000009.keras",
        ".step-00000009.keras.k2j4f0.keras",
        ".step-00000010.keras.x8d1.tmp",
    ]
    for name in partial:
        (tmp_path / name).write_bytes(b"partial")
    assert callbacks.latest_backup(str(tmp_path)) == (
        5,
        str(tmp_path / "step-00000005.keras"),
    )
    callbacks.remove_partial_backups(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [
        "step-00000003.keras",
        "step-00000005.keras",
    ]
    assert callbacks.latest_backup(str(tmp_path / "missing")) == (0, None)


def test_atomic_path_keeps_the_old_file_on_an_exception(tmp_path):
    target = tmp_path / "eval.json"
    artifacts.write_json(target, {"old": 1})
    with pytest.raises(RuntimeError, match="mid-write"):
        with artifacts.atomic_path(target) as temporary:
            pathlib.Path(temporary).write_text('{"new": ')
            raise RuntimeError("mid-write")
    assert os.listdir(tmp_path) == ["eval.json"]
    assert artifacts.read_json(target, "eval") == {"old": 1}


def test_save_model_leaves_no_file_when_saving_fails(tmp_path, monkeypatch):
    model = _tiny_model()
    real_save = model.save

    def full_disk(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        with open(path, "r+b") as file:
            file.truncate(100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    path = tmp_path / "step-00000004.keras"
    with pytest.raises(OSError, match="No space"):
        artifacts.save_model(model, path)
    assert os.listdir(tmp_path) == []


def test_save_model_keeps_seed_generators_and_a_normal_mode(tmp_path):
    model = _tiny_model()
    for _ in range(3):
        model(np.ones((1, 2), "float32"), training=True)
    states = artifacts.seed_generator_states(model)
    assert [state[1] for state in states.values()] == [3]
    path = str(tmp_path / "model.keras")
    previous_umask = os.umask(0o022)
    try:
        artifacts.save_model(model, path)
    finally:
        os.umask(previous_umask)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["model.keras"]
    # Keras alone restarts the generator; the stored states bring it back.
    plain = keras.saving.load_model(path)
    assert artifacts.seed_generator_states(plain) != states
    assert artifacts.seed_generator_states(artifacts.load_model(path)) == (
        states
    )
    inputs = keras.Input((2,))
    other = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with pytest.raises(errors.ModelFileError, match="another model"):
        artifacts.restore_seed_generators(other, path)
    # A model loaded to run takes what matches.
    assert artifacts.restore_seed_generators(other, path, strict=False) == 0


@pytest.mark.multiprocess
def test_a_process_killed_while_saving_leaves_no_loadable_file(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        import keras
        from lbie_tf.core import artifacts

        inputs = keras.Input((2,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        real_save = model.save

        def dies_mid_write(path, *args, **kwargs):
            real_save(path, *args, **kwargs)
            with open(path, "r+b") as file:
                file.truncate(os.path.getsize(path) // 2)
            os._exit(9)

        model.save = dies_mid_write
        artifacts.save_model(model, sys.argv[1])
        """
    )
    target = tmp_path / "step-00000007.keras"
    (tmp_path / "step-00000006.keras").write_bytes(b"the previous backup")
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 9, result.stderr[-2000:]
    assert not target.exists()
    (leftover,) = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert callbacks.latest_backup(str(tmp_path))[0] == 6
    with pytest.raises(Exception):  # noqa: B017 - any load error will do.
        keras.saving.load_model(str(tmp_path / leftover))


def _fit_until_nan(backup_dir, fit_callbacks):
    """Fits a tiny model on batches of 2 whose third batch is NaN."""
    model = _tiny_model()
    x = np.ones((8, 2), "float32")
    x[4:6] = np.nan
    model.fit(
        x,
        np.zeros((8, 1), "float32"),
        batch_size=2,
        shuffle=False,
        callbacks=fit_callbacks,
        verbose=0,
    )


@pytest.mark.parametrize("stop_first", [True, False])
def test_a_nan_loss_stops_before_its_step_is_backed_up(tmp_path, stop_first):
    backup_dir = str(tmp_path)
    stop = callbacks.StopOnNonFiniteLoss(backup_dir)
    backup = callbacks.StepBackup(backup_dir, every_steps=1, keep=10)
    # train_lib puts the stop first (its error leaves fit before the
    # backup runs); in the other order StepBackup refuses the NaN weights.
    order = [stop, backup] if stop_first else [backup, stop]
    with pytest.raises(errors.TrainingDivergedError) as raised:
        _fit_until_nan(backup_dir, order)
    message = str(raised.value)
    assert "at step 3" in message
    assert ("loss became nan" if stop_first else "weight became") in message
    assert str(tmp_path / "step-00000002.keras") in message
    assert sorted(os.listdir(tmp_path)) == [
        "step-00000001.keras",
        "step-00000002.keras",
    ]
    kept = artifacts.load_model(tmp_path / "step-00000002.keras")
    assert all(np.all(np.isfinite(w.numpy())) for w in kept.weights)
    assert isinstance(raised.value, errors.UserError)
    assert isinstance(raised.value, RuntimeError)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_cli_names_the_diverged_step_and_keeps_the_last_good_backup(
    tmp_path, data_dir
):
    workdir = tmp_path / "run"
    command = train_command(
        "paper_t4_attn_d4",
        workdir,
        data_dir,
        "--config.train.learning_rate=1e30",
    )
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "error:" in line]
    match = re.fullmatch(
        r"error: Training stopped at step (\d+): the training loss became "
        r"(nan|inf|-inf)\. The last good backup is kept: (\S+)\. .*",
        line,
    )
    assert match, line
    step, kept = int(match.group(1)), match.group(3)
    assert callbacks.latest_backup(str(workdir / "backup")) == (step - 1, kept)
    register_cosal_objects()
    model = artifacts.load_model(kept, compile=True)
    assert int(model.optimizer.iterations.numpy()) == step - 1
    assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)
    assert not (workdir / artifacts.MODEL_FILE_NAME).exists()
    assert not (workdir / artifacts.EVAL_FILE_NAME).exists()


def test_prepare_workdir_refuses_an_unwritable_or_full_workdir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(errors.OutputError, match="cannot be written"):
        artifacts.prepare_workdir(blocker / "run")
    with pytest.raises(errors.OutputError, match="cannot be written"):
        artifacts.prepare_workdir("/proc/lbie-tf-workdir")
    with pytest.raises(errors.OutputError, match="MiB free"):
        artifacts.prepare_workdir(tmp_path / "new" / "run", 2**62)
    # Refused: nothing of it is left behind.
    assert os.listdir(tmp_path) == ["a-file"]
    assert artifacts.prepare_workdir(tmp_path / "ok") == str(tmp_path / "ok")
    assert os.listdir(tmp_path / "ok") == []


def test_train_and_evaluate_checks_the_workdir_before_the_data(
    tmp_path, monkeypatch
):
    from experiments.configs import cosal_smoke

    config = cosal_smoke.get_config("paper_t4_attn_d4")
    config.data.data_dir = str(tmp_path / "tfds")
    workdir = tmp_path / "run"
    real_statvfs = os.statvfs

    def full(path):
        if str(path).startswith(str(workdir)):
            return os.statvfs_result((4096, 4096, 100, 0, 0, 10, 0, 0, 0, 255))
        return real_statvfs(path)

    monkeypatch.setattr(os, "statvfs", full)
    with pytest.raises(errors.OutputError, match="MiB free"):
        train_lib.train_and_evaluate(config, str(workdir))
    assert os.listdir(tmp_path) == []


# Runs experiments.train with os.statvfs reporting a full workdir.
_FULL_DISK_MAIN = """
import os, runpy, sys
workdir, real_statvfs = sys.argv[1], os.statvfs
full = os.statvfs_result((4096, 4096, 100, 0, 0, 10, 0, 0, 0, 255))
os.statvfs = lambda p: full if str(p).startswith(workdir) else real_statvfs(p)
sys.argv = ["experiments.train"] + sys.argv[2:]
runpy.run_module("experiments.train", run_name="__main__", alter_sys=True)
"""


@pytest.mark.multiprocess
@pytest.mark.parametrize("case", ["under_a_file", "full_disk"])
def test_cli_refuses_an_unusable_workdir_before_training(tmp_path, case):
    data_dir = tmp_path / "tfds"
    if case == "under_a_file":
        (tmp_path / "a-file").write_text("")
        workdir = tmp_path / "a-file" / "run"
    else:
        workdir = tmp_path / "run"
    command = train_command("paper_t4_attn_d4", workdir, data_dir)
    if case == "full_disk":
        # [python, -m, experiments.train, flags...] -> the patched main.
        command = [sys.executable, "-c", _FULL_DISK_MAIN, str(workdir)]
        command += train_command("paper_t4_attn_d4", workdir, data_dir)[3:]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: workdir "), lines
    assert len([line for line in lines if "error" in line.lower()]) == 1
    expected = "cannot be written" if case == "under_a_file" else "MiB free"
    assert expected in lines[-1]
    assert result.stdout == ""
    # Refused before the data was built or anything was written.
    assert sorted(os.listdir(tmp_path)) == (
        ["a-file"] if case == "under_a_file" else []
    )
