"""A local TF-Serving-compatible REST server for an export of any task: the
predict, status and metadata APIs over its SavedModel, and a web page.

The API follows TensorFlow Serving's RESTful API (its `api_rest` page):

- `POST /v1/models/NAME[/versions/1]:predict` with the row format
  `{"instances": [{input: value, ...}, ...]}` answers
  `{"predictions": [{output: value, ...}, ...]}`, the columnar format
  `{"inputs": {input: [value, ...]}}` answers `{"outputs": {output: ...}}`;
  `"signature_name"` picks the signature (default `serving_bytes`, not
  TF Serving's `serving_default`: image bytes and text in, a PNG out).
  Binary strings travel as `{"b64": "..."}` (standard base64): inputs in
  that form are decoded, plain JSON strings are UTF-8, and outputs whose
  name ends in `_bytes` (or that are not UTF-8) are sent in that form.
- `GET /v1/models/NAME[/versions/1]`: the model status
  (`model_version_status`); `.../metadata`: the signatures' inputs and
  outputs (`GetModelMetadataResponse`, read from saved_model.pb).
- `POST /v1/models/NAME:explain` (an lbie-tf extension): the same body as
  predict on `serving_bytes`; answers `{"explanations": [{"png_bytes":
  {"b64": ...}} or null, ...]}`, the task's picture of each answer
  (`Task.explain_serving`).
- `GET /` the web page, `GET /examples` what it needs (model name, limits,
  the task's example inputs), `GET /examples/<i>.<ext>` an example image.

A bad request gets a 4xx answer `{"error": "<one line>"}` and the server
goes on serving: the signature's own InvalidArgumentError (an image that is
not a PNG or JPEG, damaged, above the pixel limit, a text the task cannot
read) is a 400 whose message names the failing instance; the body size is
checked from Content-Length before any byte of it is read (413).
"""

import dataclasses
import errno
import http
import http.server
import io
import json
import mimetypes
import os
import re
import sys
import threading
import time
import traceback
import urllib.parse

import numpy as np

from lbie_tf.core import (
    errors,
    request_batcher,
    rest_json,
    served_model,
    serving,
)

DEFAULT_SIGNATURE = serving.BYTES_SIGNATURE_NAME
# An export holds one version of one model; TF Serving numbers versions by
# their directory, an export has none, so it is version 1.
MODEL_VERSION = "1"
# The largest request body; checked from Content-Length before the body is
# read. 64 MiB holds a base64 image at the pixel limit (a 40-megapixel JPEG
# is rarely above 20 MB, 27 MB in base64) with room to spare, and bounds
# what one request can make the server hold in memory.
MAX_BODY_BYTES = 64 * 2**20
# Idle keep-alive connections are closed after this many seconds, and a
# body that stops arriving fails after it too.
SOCKET_TIMEOUT_S = 60
WEB_PAGE = os.path.join(os.path.dirname(__file__), "web", "index.html")
_JSON = "application/json"
_MODEL_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<api>/metadata|:[A-Za-z_]+)?"
)
_EXAMPLE_PATH = re.compile(r"/examples/(?P<index>[0-9]+)\.(?P<ext>[a-z]+)")


@dataclasses.dataclass(frozen=True)
class Example:
    """An input the web page offers: image bytes, its file extension and
    the text."""

    image: bytes
    extension: str
    text: str


@dataclasses.dataclass(frozen=True)
class Response:
    """What `RestApp.handle` answers: status, body, content type, extra
    headers, and whether the connection must close after it."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple = ()
    close: bool = False


def _json_response(status, value, **kwargs):
    body = rest_json.dumps(value)
    return Response(int(status), body, **kwargs)


def error_response(status, message, **kwargs):
    return _json_response(status, {"error": message}, **kwargs)


class RestApp:
    """Answers HTTP requests for one model; `handle` is everything but the
    socket, so it can be tested without one.

    Args:
      model: a `served_model.SavedModelSignatures` (or an object with its
        `task_name`, `signatures`, `signature_defs` and `call`).
      name: the model name in the URLs (default: the task name).
      examples: `Example`s for the web page.
      explain: None, or a callable (text, {output: value of one instance})
        -> uint8 [H, W, 3] or None: `Task.explain_serving`.
    """

    def __init__(self, model, name=None, examples=(), explain=None):
        self.model = model
        self.name = name or model.task_name
        self.examples = tuple(examples)
        self.explain = explain
        self._batcher = request_batcher.RequestBatcher(
            model,
            on_unmergeable=lambda signature: log_line(
                f"the signature {signature!r} takes no merged batches; its "
                "requests now run one call each"
            ),
        )
        with open(WEB_PAGE, "rb") as file:
            self.page = file.read()

    # --- Routing ---
    def handle(self, method, path, content_length, read_body):
        """The `Response` to one request; `content_length` is the header's
        raw value (None if absent) and `read_body(n)` reads n body bytes,
        called only once the length is checked."""
        if method == "HEAD":
            # GET's answer; the handler sends its headers only.
            method = "GET"
        try:
            return self._route(method, path, content_length, read_body)
        except _MethodNotAllowed as error:
            return error_response(
                405, error.message, headers=(("Allow", error.allowed),)
            )
        except rest_json.RequestError as error:
            return error_response(error.status, error.message)

    def _route(self, method, path, content_length, read_body):
        path = urllib.parse.urlsplit(path).path
        match = _MODEL_PATH.fullmatch(path)
        if match:
            return self._model_api(method, match, content_length, read_body)
        if path in ("/", "/index.html"):
            self._allow(method, "GET")
            return Response(200, self.page, "text/html; charset=utf-8")
        if path == "/examples":
            self._allow(method, "GET")
            return _json_response(200, self._page_info())
        example = _EXAMPLE_PATH.fullmatch(path)
        if example:
            self._allow(method, "GET")
            index = int(example["index"])
            if index >= len(self.examples) or (
                example["ext"] != self.examples[index].extension
            ):
                raise rest_json.RequestError(404, f"no example {path}")
            item = self.examples[index]
            content_type = mimetypes.types_map.get(
                "." + item.extension, "application/octet-stream"
            )
            return Response(200, item.image, content_type)
        raise rest_json.RequestError(
            404,
            f"no such path {path!r}; this server answers "
            f"/v1/models/{self.name}[:predict|/metadata], / and /examples",
        )

    @staticmethod
    def _allow(method, allowed):
        if method != allowed:
            raise _MethodNotAllowed(allowed, method)

    def _model_api(self, method, match, content_length, read_body):
        name = urllib.parse.unquote(match["name"])
        version, label = match["version"], match["label"]
        if name != self.name:
            raise rest_json.RequestError(
                404,
                f"Servable not found for request: Latest({name}); this "
                f"server serves the model {self.name!r}",
            )
        if label is not None:
            raise rest_json.RequestError(
                404,
                f"Servable not found for request: Label({name}, {label}); "
                "an export has no version labels",
            )
        if version is not None and version != MODEL_VERSION:
            raise rest_json.RequestError(
                404,
                f"Servable not found for request: Specific({name}, "
                f"{version}); the export is version {MODEL_VERSION}",
            )
        api = match["api"]
        if api is None:
            self._allow(method, "GET")
            return _json_response(200, self._status())
        if api == "/metadata":
            self._allow(method, "GET")
            return _json_response(200, self._metadata())
        if api in (":predict", ":explain"):
            self._allow(method, "POST")
            body = self._read_json(content_length, read_body)
            if api == ":predict":
                return _json_response(200, self._predict(body))
            return _json_response(200, self._explain(body))
        raise rest_json.RequestError(
            404,
            f"unknown API {api!r}; this server answers :predict (and "
            ":explain, an lbie-tf extension)",
        )

    # --- Bodies ---
    @staticmethod
    def check_content_length(content_length):
        """The body length from the Content-Length header's value.

        Raises:
          RequestError: 411 when it is missing, 400 when malformed, 413
            when above MAX_BODY_BYTES.
        """
        if content_length is None:
            raise rest_json.RequestError(
                411,
                "a POST needs a Content-Length header (chunked bodies are "
                "not accepted)",
            )
        if not content_length.strip().isdigit():
            raise rest_json.RequestError(
                400, f"bad Content-Length header {content_length!r}"
            )
        length = int(content_length)
        if length > MAX_BODY_BYTES:
            raise rest_json.RequestError(
                413,
                f"the body is {length} bytes, above the limit of "
                f"{MAX_BODY_BYTES} bytes (MAX_BODY_BYTES, 64 MiB); nothing "
                "of it was read",
            )
        return length

    def _read_json(self, content_length, read_body):
        length = self.check_content_length(content_length)
        body = read_body(length)
        if len(body) < length:
            raise rest_json.RequestError(
                400, f"the body ended after {len(body)} of {length} bytes"
            )
        try:
            # JSON bodies are UTF-8 (json.loads would guess UTF-16 and -32).
            value = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise rest_json.RequestError(
                400, "malformed JSON: not UTF-8"
            ) from None
        except json.JSONDecodeError as error:
            raise rest_json.RequestError(
                400, f"malformed JSON: {error}"
            ) from None
        except RecursionError:
            raise rest_json.RequestError(
                400, "malformed JSON: nested too deeply"
            ) from None
        if not isinstance(value, dict):
            raise rest_json.RequestError(
                400,
                "the body must be a JSON object; received "
                + rest_json.json_type(value),
            )
        return value

    # --- APIs ---
    def _status(self):
        return {
            "model_version_status": [
                {
                    "version": MODEL_VERSION,
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }

    def _metadata(self):
        return {
            "model_spec": {
                "name": self.name,
                "signature_name": "",
                "version": MODEL_VERSION,
            },
            "metadata": {
                "signature_def": {
                    "signature_def": self.model.signature_defs,
                }
            },
        }

    def _page_info(self):
        return {
            "model": self.name,
            "task": self.model.task_name,
            "version": MODEL_VERSION,
            "signature_name": DEFAULT_SIGNATURE,
            "signatures": sorted(self.model.signatures),
            "explain": self.explain is not None,
            "max_body_bytes": MAX_BODY_BYTES,
            "max_image_pixels": serving.MAX_IMAGE_PIXELS,
            "examples": [
                {"image": f"/examples/{i}.{e.extension}", "text": e.text}
                for i, e in enumerate(self.examples)
            ],
        }

    def _signature_of(self, body):
        name = body.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(name, str):
            raise rest_json.RequestError(
                400, '"signature_name" must be a string'
            )
        if name not in self.model.signatures:
            raise rest_json.RequestError(
                400,
                f"Serving signature name: {name!r} not found in signature "
                f"def; this model has {sorted(self.model.signatures)}",
            )
        return name

    def _inputs_of(self, body, signature):
        info = self.model.signatures[signature]
        if ("instances" in body) == ("inputs" in body):
            raise rest_json.RequestError(
                400,
                'the body needs exactly one of "instances" (row format) or '
                f'"inputs" (columnar format); it has keys {sorted(body)}',
            )
        if "instances" in body:
            inputs, batch = rest_json.rows_to_inputs(body["instances"], info)
            return inputs, batch, "instances"
        inputs, batch = rest_json.columns_to_inputs(body["inputs"], info)
        return inputs, batch, "inputs"

    def _run(self, signature, inputs, batch, form):
        """Calls the signature; a refused batch is run again one instance
        at a time, so that the error names the first bad instance."""
        try:
            return self._batcher.call(signature, inputs, batch)
        except served_model.SignatureError as error:
            batch_error = str(error)
        label = "instances[{}]" if form == "instances" else "instance {}"
        if batch == 1:
            raise rest_json.RequestError(
                400, f"{label.format(0)}: {batch_error}"
            )
        if batch is not None:
            for index in range(batch):
                single = {k: v[index : index + 1] for k, v in inputs.items()}
                try:
                    self.model.call(signature, single)
                except served_model.SignatureError as error:
                    message = str(error)
                    # The instance was element 0 of its own call.
                    for name in inputs:
                        message = message.replace(
                            f"{name}[0]", f"{name}[{index}]"
                        )
                    raise rest_json.RequestError(
                        400, f"{label.format(index)}: {message}"
                    ) from None
        raise rest_json.RequestError(
            400,
            f"the signature {signature!r} refused the batch of "
            f"{batch if batch is not None else 'several'} instances as a "
            f"whole (each alone is fine): {batch_error}",
        )

    def _predict(self, body):
        signature = self._signature_of(body)
        inputs, batch, form = self._inputs_of(body, signature)
        outputs = self._run(signature, inputs, batch, form)
        if form == "inputs":
            values = {k: rest_json.to_json(v, k) for k, v in outputs.items()}
            if len(values) == 1:
                return {"outputs": next(iter(values.values()))}
            return {"outputs": values}
        return {"predictions": self._rows(outputs, batch)}

    @staticmethod
    def _rows(outputs, batch):
        for key, value in outputs.items():
            if np.ndim(value) == 0 or np.shape(value)[0] != batch:
                raise rest_json.RequestError(
                    400,
                    f"the output {key!r} has shape {list(np.shape(value))}, "
                    f"not one row per instance ({batch}); use the columnar "
                    'format ("inputs")',
                )
        if len(outputs) == 1:
            key, value = next(iter(outputs.items()))
            return [rest_json.to_json(row, key) for row in value]
        return [
            {
                key: rest_json.to_json(value[index], key)
                for key, value in outputs.items()
            }
            for index in range(batch)
        ]

    def _explain(self, body):
        if self.explain is None:
            raise rest_json.RequestError(
                404,
                f"the task {self.model.task_name!r} draws no explanation "
                "picture (Task.explain_serving)",
            )
        signature = self._signature_of(body)
        if signature != DEFAULT_SIGNATURE:
            raise rest_json.RequestError(
                400, f":explain answers the {DEFAULT_SIGNATURE} signature only"
            )
        inputs, batch, form = self._inputs_of(body, signature)
        if batch is None:
            raise rest_json.RequestError(
                400, ":explain needs one image_bytes per text"
            )
        outputs = self._run(signature, inputs, batch, form)
        explanations = []
        for index in range(batch):
            # `text` is an input of every bytes signature (core serving).
            text = inputs["text"][index].decode("utf-8", "replace")
            one = {key: value[index] for key, value in outputs.items()}
            try:
                picture = self.explain(text, one)
            except errors.UserError as error:
                raise rest_json.RequestError(
                    400, f"instances[{index}]: {errors.one_line(error)}"
                ) from None
            explanations.append(
                None
                if picture is None
                else {"png_bytes": rest_json.b64(_png(picture))}
            )
        return {"explanations": explanations}


class _MethodNotAllowed(rest_json.RequestError):
    def __init__(self, allowed, method):
        super().__init__(
            405, f"method {method} is not allowed here; use {allowed}"
        )
        self.allowed = allowed


def _png(pixels):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def task_examples(task, directory):
    """The task's example input (`Task.write_edit_example`, written into
    `directory`) as `Example`s; none when the task cannot write one from
    the export alone."""
    try:
        example = task.write_edit_example(directory)
        with open(example.image_path, "rb") as file:
            image = file.read()
    except (NotImplementedError, OSError, ValueError) as error:
        log_line(f"no example for the web page: {errors.one_line(error)}")
        return ()
    extension = os.path.splitext(example.image_path)[1].lstrip(".").lower()
    return (Example(image=image, extension=extension, text=example.text),)


def task_explain(task):
    """`task.explain_serving` if the task overrides the base's (which draws
    nothing), else None."""
    from lbie_tf.core import task as task_lib

    if type(task).explain_serving is task_lib.Task.explain_serving:
        return None
    return task.explain_serving


_LOG_LOCK = threading.Lock()


def log_line(line):
    """Writes one line to stderr (whole, whatever other threads write)."""
    with _LOG_LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Hands every request to the server's `RestApp`; HTTP/1.1, so that a
    client may keep its connection open."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes; with Nagle's algorithm the second
    # would wait for the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True
    server_version = "lbie-tf-serve"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S

    def _serve(self):
        started = time.perf_counter()
        app = self.server.app
        if self.headers.get("Transfer-Encoding"):
            response = error_response(
                411,
                "chunked bodies are not accepted; send a Content-Length",
                close=True,
            )
        else:
            try:
                response = app.handle(
                    self.command,
                    self.path,
                    self.headers.get("Content-Length"),
                    self.rfile.read,
                )
            except OSError as error:
                # The client went away or stopped sending its body.
                self.close_connection = True
                if not self.server.quiet:
                    log_line(
                        f"{self.client_address[0]} {self.command} "
                        f"{self.path} connection lost "
                        f"({errors.one_line(error)})"
                    )
                return
            except Exception as error:  # A bug: the client gets one line.
                traceback.print_exc()
                response = error_response(
                    500, f"internal error: {errors.one_line(error)}"
                )
        if self.command == "POST" and response.status in (411, 413):
            # The body was not read: the connection cannot be reused.
            response = dataclasses.replace(response, close=True)
        self._send(response)
        if not self.server.quiet:
            elapsed = (time.perf_counter() - started) * 1000
            line = (
                f"{self.client_address[0]} {self.command} {self.path} "
                f"{response.status} {len(response.body)}B {elapsed:.1f}ms"
            )
            if response.status >= 400:
                line += " " + rest_json.shorten(
                    json.loads(response.body).get("error", ""), 300
                )
            log_line(line)

    def _send(self, response):
        self.send_response_only(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in response.headers:
            self.send_header(key, value)
        if response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve
    do_OPTIONS = do_HEAD = _serve

    def handle_expect_100(self):
        # Refuse a body that is too large before the client sends it.
        try:
            RestApp.check_content_length(self.headers.get("Content-Length"))
        except rest_json.RequestError as error:
            self._send(error_response(error.status, error.message, close=True))
            return False
        return super().handle_expect_100()

    def send_error(self, code, message=None, explain=None):
        # http.server's own errors (a malformed request line, a header too
        # long, an unknown method) as JSON too.
        self.close_connection = True
        # A request line too malformed to name its version still gets a
        # status line and headers (HTTP/0.9 answers have none).
        self.request_version = self.protocol_version
        text = message or http.HTTPStatus(code).phrase
        self._send(error_response(code, text, close=True))

    def log_message(self, format, *args):
        # Each request is logged once, by `_serve`.
        pass


class RestServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer (a thread per connection) bound to
    (host, port) that answers with `app`; port 0 picks a free port."""

    daemon_threads = True

    def __init__(self, app, host="127.0.0.1", port=8501, quiet=False):
        self.app = app
        self.quiet = quiet
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            reason = errors.one_line(error.strerror or error)
            hint = (
                "pass another --port (0 picks a free one)"
                if error.errno == errno.EADDRINUSE
                else "pass another --host or --port"
            )
            raise errors.UsageError(
                f"cannot listen on {host}:{port} ({reason}); {hint}."
            ) from None

    @property
    def url(self):
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"
