"""The end-to-end checks every registered task must pass (like the layer
checklist for layers): train under the default and the Mirrored strategy,
resume after a kill, evaluate, export, reload in a fresh process with only
TensorFlow, call every signature, edit."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).parents[1]
_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
# A bounded wait for each command (the machine is shared and slow at times).
_TIMEOUT_S = 600

_RELOAD = r"""
import json, sys
# TensorFlow imports Keras when it is installed; None makes it unimportable,
# so the export must work without it.
sys.modules["keras"] = None
import numpy as np
import tensorflow as tf
export_dir, inputs_path = sys.argv[1], sys.argv[2]
loaded = tf.saved_model.load(export_dir + "/saved_model")
inputs = np.load(inputs_path)
task = json.load(open(export_dir + "/task.json"))
outputs = {}
for name, input_names in task["signatures"].items():
    signature = loaded.signatures[name]
    result = signature(**{k: tf.constant(inputs[name + "/" + k])
                          for k in input_names})
    outputs[name] = sorted(result)
project = ("keras.", "lbie_tf", "keras_layers", "data_builders")
assert not [m for m in sys.modules if m.startswith(project)]
print(json.dumps(outputs))
"""


def _run(args, **kwargs):
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_ENV,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        **kwargs,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def _train_args(task_name, workdir, data_dir, *extra):
    return [
        "-m",
        "experiments.train",
        f"--config=experiments/configs/{task_name}_smoke.py",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.train.epochs=2",
        *extra,
    ]


def _kill_after_first_backup(args, backup_dir):
    """Starts training, SIGKILLs it once a backup exists (mid-run)."""
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + _TIMEOUT_S
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if backup_dir.is_dir() and any(backup_dir.glob("step-*.keras")):
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)


def run_task_checklist(task_name, tmp_path):
    """Runs every check on the task registered as `task_name`, using its
    smoke config `experiments/configs/<task_name>_smoke.py`."""
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    tmp_path = pathlib.Path(tmp_path)
    data_dir, workdir = tmp_path / "data", tmp_path / "run"
    # A backup after every step, so that the kill comes mid-run.
    args = _train_args(
        task_name, workdir, data_dir, "--config.train.backup_every_steps=1"
    )

    # Default strategy, killed after its first backup, then resumed.
    _kill_after_first_backup(args, workdir / "backup")
    _run(args)
    results = json.loads((workdir / "eval.json").read_text())
    assert results["task"] == task_name and results["split"] == "test"
    steps = max(
        int(p.stem.split("-")[1]) for p in (workdir / "backup").glob("*.keras")
    )
    steps_per_epoch = results["train_images"] // results["batch_size"]
    assert steps == results["epochs"] * steps_per_epoch

    # The same config under MirroredStrategy over two logical CPUs, with
    # a backup at each epoch's end only.
    mirrored = tmp_path / "mirrored"
    _run(
        _train_args(
            task_name,
            mirrored,
            data_dir,
            "--config.train.backup_every_steps=0",
            "--config.runtime.strategy=mirrored",
            "--config.runtime.num_cpu_devices=2",
        )
    )
    assert json.loads((mirrored / "eval.json").read_text())["replicas"] == 2

    # Evaluate and export through the CLIs.
    evaluated = _run(["-m", "experiments.evaluate", f"--workdir={workdir}"])
    assert f"on {results['num_examples']} examples" in evaluated.stdout
    export_dir = tmp_path / "export"
    _run(
        [
            "-m",
            "experiments.export",
            f"--model={workdir}",
            f"--out={export_dir}",
        ]
    )
    task_file = json.loads((export_dir / "task.json").read_text())
    assert task_file["task"] == task_name
    assert {"serving_default", "serving_bytes"} <= set(task_file["signatures"])

    # Every signature, in a fresh process that imports only TensorFlow.
    task = task_lib.get_task_class(task_name)()
    inputs_path = tmp_path / "inputs.npz"
    examples = task.serving_examples()
    np.savez(
        inputs_path,
        **{
            f"{signature}/{name}": value
            for signature, named in examples.items()
            for name, value in named.items()
        },
    )
    reloaded = _run(["-c", _RELOAD, str(export_dir), str(inputs_path)]).stdout
    outputs = json.loads(reloaded.strip().splitlines()[-1])
    assert "png_bytes" in outputs["serving_bytes"]

    # Edit an example through the CLI.
    example = task.write_edit_example(tmp_path / "example")
    out = tmp_path / "edited.png"
    _run(
        [
            "-m",
            "experiments.edit",
            f"--model={export_dir}",
            f"--image={example.image_path}",
            f"--text={example.text}",
            f"--out={out}",
        ]
    )
    assert out.is_file() and out.stat().st_size > 0
