"""Tests of training under tf.distribute: Mirrored over two logical CPUs,
two MultiWorkerMirrored workers on 127.0.0.1, and the strategy helpers."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments.configs import cosal_smoke
from lbie_tf import tasks  # noqa: F401
from lbie_tf.core import distribute, errors, multi_worker_fix, train_lib
from lbie_tf.core import task as task_lib

ROOT = pathlib.Path(__file__).parents[3]
HELPER = pathlib.Path(__file__).with_name("distributed_run.py")
# Per group of processes; a run takes 20 to 60 s on 2 busy cores.
TIMEOUT_S = 300
RUN_ENTRIES = [
    "backup",
    "config.json",
    "eval.json",
    "model.keras",
    "tensorboard",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The smoke dataset (both cells below read it), generated here once:
    workers sharing a data_dir must not generate it at the same time."""
    directory = tmp_path_factory.mktemp("tfds")
    config = cosal_smoke.get_config("paper_t4_attn_d4")
    config.data.data_dir = str(directory)
    task_lib.build_task(config).prepare_data()
    return directory


def free_ports(count):
    """Ports that were free a moment ago (bound to port 0, then closed)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def run_group(tmp_path, specs, envs):
    """Runs one helper process per spec at once; returns their reports.

    Bounded: every process is killed when one fails or the group runs past
    TIMEOUT_S (a worker whose peer died would wait for it forever).
    """
    processes, logs = [], []
    for index, (spec, extra_env) in enumerate(zip(specs, envs, strict=True)):
        env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
        if "TF_CONFIG" not in extra_env:
            env.pop("TF_CONFIG", None)
        log = open(tmp_path / f"process{index}.log", "w+")  # noqa: SIM115
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [sys.executable, str(HELPER), json.dumps(spec)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in processes):
            failed = any(p.poll() not in (None, 0) for p in processes)
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    codes = [p.returncode for p in processes]
    if codes != [0] * len(processes):
        tails = "\n".join(
            f"--- process {i} (exit {code}):\n{output[-3000:]}"
            for i, (code, output) in enumerate(zip(codes, outputs, strict=True))
        )
        pytest.fail(f"helper processes failed or timed out:\n{tails}")
    return [json.loads(pathlib.Path(s["result"]).read_text()) for s in specs]


def train_spec(tmp_path, name, cell, data_dir, strategy, epochs, **extra):
    return {
        "mode": "train",
        "cell": cell,
        "data_dir": str(data_dir),
        "workdir": str(tmp_path / name),
        "strategy": strategy,
        "epochs": epochs,
        "result": str(tmp_path / f"{name}.json"),
        **extra,
    }


def weights(path):
    return keras.saving.load_model(str(path)).get_weights()


@pytest.mark.slow
@pytest.mark.multiprocess
def test_mirrored_over_two_cpus_follows_the_default_trajectory(
    tmp_path, data_dir
):
    # The T = 1 cell draws no random numbers: the Gumbel gate of T = 4 gives
    # each replica the same draws for its half batch, a different (equally
    # valid) run.
    specs = [
        train_spec(
            tmp_path, "default", "paper_t1_attn_d4", data_dir, "default", 2
        ),
        train_spec(
            tmp_path,
            "mirrored",
            "paper_t1_attn_d4",
            data_dir,
            "mirrored",
            2,
            num_cpu_devices=2,
        ),
    ]
    default, mirrored = run_group(tmp_path, specs, [{}, {}])

    assert default["eval"]["replicas"] == 1
    assert mirrored["eval"]["replicas"] == 2
    # 16 images, global batch 8: 2 steps in each of 2 epochs. Each replica
    # sees half of the same global batch, Keras divides each replica's loss
    # by the replica count and sums the gradients, so the steps agree up to
    # the order of float sums (measured: bit for bit).
    assert len(default["losses"]) == 4
    np.testing.assert_allclose(mirrored["losses"], default["losses"], rtol=1e-5)
    for ours, theirs in zip(
        weights(tmp_path / "mirrored" / "model.keras"),
        weights(tmp_path / "default" / "model.keras"),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    # The evaluation reads the whole test split outside the replicas.
    assert mirrored["eval"]["num_examples"] == 6
    assert mirrored["eval"]["iou_shapes"] == pytest.approx(
        default["eval"]["iou_shapes"], abs=1e-6
    )


def _worker_envs(tmp_path, count):
    ports = free_ports(count)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    envs = []
    for index in range(count):
        temporary = tmp_path / f"tmp{index}"
        temporary.mkdir()
        task = {"type": "worker", "index": index}
        envs.append(
            {
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": task}),
                # Where each worker's tempfile.mkdtemp lands.
                "TMPDIR": str(temporary),
            }
        )
    return envs


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_end_with_identical_weights_and_only_the_chief_writes(
    tmp_path, data_dir
):
    kept = tmp_path / "worker1-model.keras"
    specs = [
        train_spec(
            tmp_path,
            "run",
            "paper_t4_attn_d4",
            data_dir,
            "multi_worker",
            1,
            result=str(tmp_path / f"worker{index}.json"),
            keep_model=str(kept),
        )
        for index in range(2)
    ]
    chief, other = run_group(tmp_path, specs, _worker_envs(tmp_path, 2))

    assert chief["chief"] and not other["chief"]
    # Every worker logs the loss over both workers' replicas, not its own.
    assert len(chief["losses"]) == 2
    assert chief["losses"] == other["losses"]
    assert chief["eval"] == other["eval"]
    assert chief["eval"]["replicas"] == 2
    # The non-chief wrote everything into its temporary directory, which is
    # gone; the workdir holds one run's files, all of them the chief's.
    assert other["out_dir"].startswith(str(tmp_path / "tmp1"))
    assert other["out_dir_entries"] == RUN_ENTRIES
    assert list((tmp_path / "tmp1").iterdir()) == []
    workdir = tmp_path / "run"
    assert sorted(os.listdir(workdir)) == RUN_ENTRIES
    events = list((workdir / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    for event in events:
        assert f".{chief['pid']}." in event.name, event.name
    # Both workers end with the same weights (and optimizer step).
    chief_model = keras.saving.load_model(str(workdir / "model.keras"))
    other_model = keras.saving.load_model(str(kept))
    assert int(chief_model.optimizer.iterations.numpy()) == 2
    assert int(other_model.optimizer.iterations.numpy()) == 2
    for ours, theirs in zip(
        chief_model.get_weights(), other_model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_keras_multi_worker_bug_is_there(tmp_path):
    """The Keras failures multi_worker_fix works around, on a tiny model
    with dict inputs. When this test fails, Keras has fixed one of them:
    remove that half of lbie_tf/core/multi_worker_fix.py."""
    specs = [
        {"mode": "keras_canary", "result": str(tmp_path / f"w{index}.json")}
        for index in range(2)
    ]
    reports = run_group(tmp_path, specs, _worker_envs(tmp_path, 2))
    for report in reports:
        assert report["needed"]
        assert "unsupported type (<class 'dict'>)" in report["none"].get(
            "error", "Keras fit now builds from dict inputs under MWMS"
        )
        assert "Invalid reduction dimension 0" in report["symbolic_build"].get(
            "error", "Keras now reduces scalar logs under MWMS"
        )
        assert np.isfinite(report["whole"]["loss"]).all()
    assert reports[0]["whole"] == reports[1]["whole"]


def _cluster_strategy(cluster, task_type, task_id):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
    )
    return types.SimpleNamespace(cluster_resolver=resolver)


def test_is_chief():
    assert distribute.is_chief(tf.distribute.get_strategy())
    workers = {"worker": ["a:1", "b:1"]}
    assert distribute.is_chief(_cluster_strategy(workers, "worker", 0))
    assert not distribute.is_chief(_cluster_strategy(workers, "worker", 1))
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert distribute.is_chief(_cluster_strategy(with_chief, "chief", 0))
    assert not distribute.is_chief(_cluster_strategy(with_chief, "worker", 0))
    evaluator = {**workers, "evaluator": ["e:1"]}
    assert not distribute.is_chief(_cluster_strategy(evaluator, "evaluator", 0))
    # A single-process MultiWorkerMirroredStrategy has no task type.
    assert distribute.is_chief(_cluster_strategy({}, None, None))


def test_unknown_strategy_is_a_usage_error():
    with pytest.raises(errors.UsageError) as raised:
        distribute.make_strategy("tpu")
    message = str(raised.value)
    assert message == errors.one_line(message)
    assert "'tpu'" in message and "multi_worker" in message


@pytest.mark.slow
def test_cli_prints_an_unknown_strategy_as_one_line(tmp_path):
    workdir = tmp_path / "run"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.train",
            "--config=experiments/configs/cosal_smoke.py",
            f"--workdir={workdir}",
            "--config.runtime.strategy=tpu",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = [
        line for line in run.stderr.splitlines() if line.startswith("error")
    ]
    assert lines == [
        "error: `runtime.strategy` must be one of ['default', 'mirrored', "
        "'multi_worker'], received: 'tpu'."
    ]
    assert not workdir.exists()


def test_jit_compile_is_refused_over_several_replicas():
    one = tf.distribute.get_strategy()
    distribute.check_jit_compile(one, True)
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    distribute.check_jit_compile(two, False)
    with pytest.raises(errors.UsageError, match="runtime.strategy=mirrored"):
        distribute.check_jit_compile(two, True)


def test_global_batch_must_split_equally_over_replicas():
    config = cosal_smoke.get_config()
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    assert train_lib.global_batch_size(config, 16, two) == 8
    # A batch larger than the split is cut to it (a multiple of replicas).
    config.train.batch_size = 32
    assert train_lib.global_batch_size(config, 15, two) == 14
    config.train.batch_size = 9
    with pytest.raises(
        errors.UsageError, match=r"multiple of 2 \(e.g. 8 or 10"
    ):
        train_lib.global_batch_size(config, 16, two)


def test_worker_dir_copies_backups_for_the_other_workers(tmp_path):
    workdir = tmp_path / "run"
    (workdir / "backup").mkdir(parents=True)
    (workdir / "backup" / "step-00000002.keras").write_text("state")
    assert distribute.worker_dir(str(workdir), True) == str(workdir)
    other = distribute.worker_dir(str(workdir), False, copy=("backup", "x"))
    assert not other.startswith(str(workdir))
    assert (pathlib.Path(other) / "backup" / "step-00000002.keras").is_file()
    distribute.remove_worker_dir(other, False)
    assert not os.path.exists(other)
    distribute.remove_worker_dir(str(workdir), True)
    assert sorted(os.listdir(workdir / "backup")) == ["step-00000002.keras"]


def test_one_process_strategies_need_no_fix():
    strategy = tf.distribute.get_strategy()
    assert not multi_worker_fix.needed(strategy)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    train_step = model.train_step
    assert not multi_worker_fix.apply(model, strategy)
    assert model.train_step == train_step
    # A no-op outside a multi-worker cluster.
    distribute.check_same_on_all_workers(strategy, 3, "the resume step")
