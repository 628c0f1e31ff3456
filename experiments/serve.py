r"""Serves an export of any task over TF Serving's REST API, with a web page.

  python -m experiments.serve --model=runs/export [--name=NAME] \
      [--port=8501] [--host=127.0.0.1] [--quiet]

Then open http://127.0.0.1:8501/ (choose or upload an image, type the
text, see the edited image), or call the API as TF Serving's:

  curl http://127.0.0.1:8501/v1/models/cosal            # status
  curl http://127.0.0.1:8501/v1/models/cosal/metadata   # signatures
  curl -d '{"instances": [{"image_bytes": {"b64": "<base64 PNG>"},
            "text": "circle is red. ..."}]}' \
      http://127.0.0.1:8501/v1/models/cosal:predict
  # -> {"predictions": [{"png_bytes": {"b64": "..."}, "labels": [...], ...}]}

--model is an export directory (`python -m experiments.export`); the task
comes from its task.json, the model is its SavedModel, run through the
signatures' tf.functions. NAME defaults to the task name. The default
signature is `serving_bytes` (image bytes + text -> png_bytes and the
task's outputs); "signature_name" in the body picks another. The columnar
form {"inputs": {"image_bytes": [...], "text": [...]}} answers
{"outputs": {...}}. Limits: a body of at most 64 MiB (413, checked from
Content-Length before reading), 64 instances a request, plain strings of at
most 64 KiB, images of at most 40,000,000 pixels (checked from the header
by the signature). A bad request gets a 4xx and {"error": "..."} naming
what is wrong (and which instance), and the server goes on. --port=0 picks
a free port; the line `serving ... at http://HOST:PORT/` on stdout says
which. Concurrent requests are merged into one signature call (TF
Serving's batching, without waiting); for a small model under concurrent
load, --intra_op_threads=1 --inter_op_threads=1 spends the least CPU per
request. Each request is logged as one line on stderr (--quiet: none).
Ctrl-C or SIGTERM stops it. Bad flags print one line `error: ...` and exit
with status 2.
"""

import os

# The command reports its own errors in one line; TensorFlow's native log
# lines (CUDA probing, oneDNN notices) would only bury them. Set
# TF_CPP_MIN_LOG_LEVEL=0 to see them again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from absl import app, flags  # noqa: E402

from experiments import cli  # noqa: E402
from lbie_tf.core import errors  # noqa: E402

_MODEL = flags.DEFINE_string(
    "model", None, "An export directory (python -m experiments.export)."
)
_NAME = flags.DEFINE_string(
    "name", None, "The model name in /v1/models/NAME; default: the task."
)
_PORT = flags.DEFINE_integer(
    "port", 8501, "TCP port to listen on; 0 picks a free one (printed)."
)
_HOST = flags.DEFINE_string(
    "host",
    "127.0.0.1",
    "Address to listen on; the default takes local clients only.",
)
_QUIET = flags.DEFINE_boolean(
    "quiet", False, "Do not log a line per request on stderr."
)
_INTRA_OP_THREADS = flags.DEFINE_integer(
    "intra_op_threads",
    0,
    "Threads TensorFlow may split one op over; 0: one per core. 1 spends "
    "the least CPU per request on a small model under concurrent load "
    "(requests then run side by side instead).",
)
_INTER_OP_THREADS = flags.DEFINE_integer(
    "inter_op_threads",
    0,
    "Ops TensorFlow may run at once; 0: one per core.",
)


def _stop(signum, frame):
    raise KeyboardInterrupt


def _run(argv):
    if len(argv) > 1:
        raise errors.UsageError(
            f"unexpected arguments {argv[1:]}; every input is a --flag, "
            "see --help."
        )
    if _MODEL.value is None:
        raise errors.UsageError("--model is required; see --help.")
    if not 0 <= _PORT.value <= 65535:
        raise errors.UsageError(
            f"--port must be in 0..65535; received {_PORT.value}."
        )
    for flag in (_INTRA_OP_THREADS, _INTER_OP_THREADS):
        if flag.value < 0:
            raise errors.UsageError(
                f"--{flag.name} must be 0 (TensorFlow's choice) or more; "
                f"received {flag.value}."
            )
    from lbie_tf.core import rest_server, served_model

    task_name, _ = served_model.read_export(_MODEL.value)
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    task = task_lib.get_task_class(task_name)()
    # Bind before loading, so that a port in use fails in a second.
    server = rest_server.RestServer(
        None, _HOST.value, _PORT.value, quiet=_QUIET.value
    )
    signal.signal(signal.SIGTERM, _stop)
    try:
        with tempfile.TemporaryDirectory(prefix="lbie-serve-") as directory:
            model = served_model.SavedModelSignatures(
                _MODEL.value, _INTRA_OP_THREADS.value, _INTER_OP_THREADS.value
            )
            server.app = rest_server.RestApp(
                model,
                name=_NAME.value,
                examples=rest_server.task_examples(task, directory),
                explain=rest_server.task_explain(task),
            )
            print(
                f"serving {server.app.name} (task {task_name}) at "
                f"{server.url}/ : POST {server.url}/v1/models/"
                f"{server.app.name}:predict",
                flush=True,
            )
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.stdout.flush()


def main(argv):
    cli.exit_on_user_error(_run, argv)


if __name__ == "__main__":
    app.run(main)
