"""Tests of `python -m experiments.serve`: the shipped CoSaL model's export
served by a real subprocess on loopback, loaded by concurrent clients, fed
bad requests; a ReferIt export served by the same server unchanged."""

import base64
import http.client
import io
import json
import random
import socket
import struct
import threading
import urllib.parse
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.experiments import serve_helpers
from tests.experiments.serve_helpers import request, request_json

pytestmark = pytest.mark.multiprocess


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(data):
    return {"b64": base64.b64encode(data).decode()}


def _cosal_inputs(count=4):
    """(PNG bytes, text) of CoSaL test examples 0..count-1 (4 direct
    sentences, as the shipped d4 model was trained on)."""
    from data_builders.cosal import generator

    inputs = []
    for index in range(count):
        example = generator.generate_example(
            generator.example_rng(0, "test", index), num_direct=4
        )
        inputs.append(
            (_png(example["image"]), ". ".join(example["sentence_text"]))
        )
    return inputs


def _direct(export_dir, image, text):
    """What the SavedModel's serving_bytes gives for one input, called in
    this process: {output: numpy value of the one instance}."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir / "saved_model"))
    outputs = loaded.signatures["serving_bytes"](
        image_bytes=tf.constant([image]), text=tf.constant([text])
    )
    return {key: value.numpy()[0] for key, value in outputs.items()}


@pytest.fixture(scope="module")
def cosal_export(pretrained_cosal_export):
    # The shipped model, exported through the CLI (training one is the task
    # checklist's part).
    return pretrained_cosal_export


@pytest.fixture(scope="module")
def inputs():
    return _cosal_inputs()


@pytest.fixture(scope="module")
def expected(cosal_export, inputs):
    return [_direct(cosal_export, image, text) for image, text in inputs]


@pytest.fixture(scope="module")
def server(cosal_export, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "serve.log"
    server = serve_helpers.Server(cosal_export, log)
    yield server
    assert server.stop() == 0, server.log()
    assert "Traceback" not in server.log()


def _predict_url(server, name=None):
    return f"{server.url}/v1/models/{name or server.name}:predict"


def _instance(image, text):
    return {"image_bytes": _b64(image), "text": text}


def _check_prediction(prediction, expected):
    png = base64.b64decode(prediction["png_bytes"]["b64"])
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and picture.size == (48, 48)
        pixels = np.asarray(picture.convert("RGB"))
    with Image.open(io.BytesIO(bytes(expected["png_bytes"]))) as picture:
        np.testing.assert_array_equal(pixels, np.asarray(picture))
    np.testing.assert_array_equal(prediction["labels"], expected["labels"])
    # A merged batch may take other kernels than a single call.
    np.testing.assert_allclose(
        prediction["attention_weights"],
        expected["attention_weights"],
        atol=1e-4,
    )


def test_status_and_metadata(server):
    assert server.name == "cosal"
    status = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    base = f"{server.url}/v1/models/cosal"
    assert request_json("GET", base) == (200, status)
    assert request_json("GET", f"{base}/versions/1") == (200, status)
    code, metadata = request_json("GET", f"{base}/metadata")
    assert code == 200
    assert metadata["model_spec"] == {
        "name": "cosal",
        "signature_name": "",
        "version": "1",
    }
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert {"serving_bytes", "serving_default"} <= set(signatures)
    bytes_inputs = signatures["serving_bytes"]["inputs"]
    assert {k: v["dtype"] for k, v in bytes_inputs.items()} == {
        "image_bytes": "DT_STRING",
        "text": "DT_STRING",
    }
    assert "png_bytes" in signatures["serving_bytes"]["outputs"]


def test_bounded_concurrent_load(server, inputs, expected):
    """320 requests from 8 threads, of 4 inputs (some two a request): each
    answer is that input's edit, not another request's."""
    failures, lock = [], threading.Lock()

    def client(seed):
        chooser = random.Random(seed)
        for _ in range(40):
            chosen = chooser.sample(range(len(inputs)), chooser.choice([1, 2]))
            body = {"instances": [_instance(*inputs[i]) for i in chosen]}
            try:
                code, answer = request_json("POST", _predict_url(server), body)
                assert code == 200, answer
                assert len(answer["predictions"]) == len(chosen)
                for index, prediction in zip(
                    chosen, answer["predictions"], strict=True
                ):
                    _check_prediction(prediction, expected[index])
            except AssertionError as error:
                with lock:
                    failures.append(str(error)[:500])

    threads = [threading.Thread(target=client, args=(s,)) for s in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=serve_helpers.TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures[:3]
    # One log line per request.
    assert server.log().count(":predict 200 ") >= 320


def test_columnar_form(server, inputs, expected):
    body = {
        "inputs": {
            "image_bytes": [_b64(image) for image, _ in inputs[:2]],
            "text": [text for _, text in inputs[:2]],
        }
    }
    code, answer = request_json("POST", _predict_url(server), body)
    assert code == 200, answer
    outputs = answer["outputs"]
    assert set(outputs) == {"png_bytes", "labels", "attention_weights"}
    for index in range(2):
        _check_prediction(
            {key: value[index] for key, value in outputs.items()},
            expected[index],
        )


def test_the_default_signature_by_name(server, inputs, expected):
    """signature_name picks serving_default: uint8 images and sentences as
    nested lists."""
    image, text = inputs[0]
    with Image.open(io.BytesIO(image)) as picture:
        pixels = np.asarray(picture.convert("RGB")).tolist()
    body = {
        "signature_name": "serving_default",
        "instances": [
            {"image": pixels, "sentences": text.split(". ")},
        ],
    }
    code, answer = request_json("POST", _predict_url(server), body)
    assert code == 200, answer
    prediction = answer["predictions"][0]
    np.testing.assert_array_equal(prediction["labels"], expected[0]["labels"])


def _header_only_png(width, height):
    """A PNG signature and IHDR chunk claiming width x height, then no
    pixels: refused from its header, it is never decoded."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def _bad_requests(inputs):
    image, text = inputs[0]
    good = _instance(image, text)
    words = text.split(". ")
    return {
        "malformed JSON": (b'{"instances": [', 400, ["malformed JSON"]),
        "not an object": (b"[1, 2]", 400, ["must be a JSON object"]),
        "no instances": ({"instances": []}, 400, ["empty"]),
        "neither form": ({"signature_name": "serving_bytes"}, 400, ["one of"]),
        "both forms": (
            {"instances": [good], "inputs": {}},
            400,
            ["exactly one of"],
        ),
        "bad base64": (
            {"instances": [{"image_bytes": {"b64": "abc$"}, "text": text}]},
            400,
            ["instances[0].image_bytes", "bad base64"],
        ),
        "empty image": (
            {"instances": [_instance(b"", text)]},
            400,
            ["instances[0]", "image_bytes[0] is neither a PNG nor a JPEG"],
        ),
        "corrupt image": (
            {"instances": [_instance(image[:60], text)]},
            400,
            ["instances[0]", "PNG"],
        ),
        "image above the pixel limit": (
            {"instances": [_instance(_header_only_png(8000, 6000), text)]},
            400,
            ["8000x6000", "above the limit of 40000000 pixels"],
        ),
        "image of the wrong size": (
            {
                "instances": [
                    _instance(_png(np.zeros((5, 7, 3), np.uint8)), text)
                ]
            },
            400,
            ["7x5 pixels; expected 48x48"],
        ),
        "unknown words": (
            {"instances": [_instance(image, text.replace(words[0], "x is y"))]},
            400,
            ["Unknown CoSaL word(s)", "[x y]"],
        ),
        "eight sentences": (
            {"instances": [_instance(image, ". ".join(words[:8]))]},
            400,
            ["exactly 9 sentences", "[8]"],
        ),
        "a 1 MB text": (
            {"instances": [_instance(image, "circle is red. " * 70000)]},
            400,
            ["1050000 bytes", "MAX_STRING_BYTES"],
        ),
        "a batch with a bad text at index 2": (
            {"instances": [good, good, _instance(image, "circle"), good]},
            400,
            ["instances[2]:", "exactly 9 sentences"],
        ),
        "a batch with a corrupt image at index 1": (
            {"instances": [good, _instance(image[:60], text)]},
            400,
            ["instances[1]:"],
        ),
        "an empty image at index 1": (
            {"instances": [good, _instance(b"", text)]},
            400,
            ["instances[1]:", "image_bytes[1] is neither"],
        ),
        "a missing input": (
            {"instances": [{"image_bytes": _b64(image)}]},
            400,
            ["missing ['text']"],
        ),
        "an unknown signature": (
            {"signature_name": "nope", "instances": [good]},
            400,
            ["'nope' not found", "serving_bytes"],
        ),
        "a text that is a number": (
            {"instances": [{"image_bytes": _b64(image), "text": 3}]},
            400,
            ["instances[0].text", "a number"],
        ),
    }


_BAD_CASES = list(_bad_requests([(b"x", "a. b")]))


@pytest.mark.parametrize("case", _BAD_CASES)
def test_a_bad_request_gets_a_4xx_and_the_server_goes_on(
    server, inputs, expected, case
):
    body, status, fragments = _bad_requests(inputs)[case]
    code, headers, data = request("POST", _predict_url(server), body)
    assert code == status, data
    assert headers["Content-Type"] == "application/json"
    error = json.loads(data)["error"]
    assert "\n" not in error and "Traceback" not in error
    assert "[[{{node" not in error and "Graph execution" not in error
    for fragment in fragments:
        assert fragment in error
    code, answer = request_json(
        "POST", _predict_url(server), {"instances": [_instance(*inputs[0])]}
    )
    assert code == 200, answer
    _check_prediction(answer["predictions"][0], expected[0])


@pytest.mark.parametrize(
    "method, path, status, fragment",
    [
        ("POST", "/v1/models/other:predict", 404, "Servable not found"),
        ("GET", "/v1/models/other", 404, "serves the model 'cosal'"),
        ("POST", "/v1/models/cosal/versions/2:predict", 404, "version 1"),
        ("GET", "/v1/models/cosal/labels/stable", 404, "no version labels"),
        ("POST", "/v1/models/cosal:classify", 404, "unknown API"),
        ("GET", "/v1/models/cosal:predict", 405, "use POST"),
        ("PUT", "/v1/models/cosal", 405, "use GET"),
        ("DELETE", "/v1/models/cosal/metadata", 405, "use GET"),
        ("POST", "/", 405, "use GET"),
        ("GET", "/nowhere", 404, "no such path"),
        ("GET", "/examples/7.png", 404, "no example"),
    ],
)
def test_wrong_paths_and_methods(server, method, path, status, fragment):
    body = b"{}" if method in ("POST", "PUT") else None
    code, headers, data = request(method, server.url + path, body)
    assert code == status
    assert fragment in json.loads(data)["error"]
    if status == 405:
        assert headers["Allow"] in ("GET", "POST")


def _raw_post(server, headers, body=b""):
    """A POST with exactly these headers; returns (status, error, seconds
    until the answer)."""
    parts = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, 30)
    try:
        connection.putrequest("POST", "/v1/models/cosal:predict")
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())["error"], response
    finally:
        connection.close()


def test_a_body_above_the_limit_is_refused_before_it_is_read(server):
    # The header promises 64 MiB + 1 bytes and none follow: an answer
    # proves the server did not wait for the body.
    status, error, response = _raw_post(
        server, {"Content-Length": str(64 * 2**20 + 1)}
    )
    assert status == 413
    assert "above the limit of 67108864 bytes" in error
    assert response.getheader("Connection") == "close"


def test_a_post_without_content_length_is_refused(server):
    status, error, _ = _raw_post(server, {"Transfer-Encoding": "chunked"})
    assert status == 411 and "Content-Length" in error
    status, error, _ = _raw_post(server, {})
    assert status == 411


def test_the_explanation_of_an_answer(server, inputs):
    body = {"instances": [_instance(*inputs[0])]}
    code, answer = request_json(
        "POST", f"{server.url}/v1/models/cosal:explain", body
    )
    assert code == 200, answer
    png = base64.b64decode(answer["explanations"][0]["png_bytes"]["b64"])
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and picture.width > 48 * 8


def test_the_page_and_its_examples(server):
    code, headers, page = request("GET", server.url + "/")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    # Nothing from other hosts.
    assert b"/examples" in page
    assert b"http://" not in page and b"https://" not in page
    code, info = request_json("GET", server.url + "/examples")
    assert code == 200
    assert info["model"] == "cosal" and info["explain"] is True
    assert len(info["examples"]) == 1
    example = info["examples"][0]
    code, headers, image = request("GET", server.url + example["image"])
    assert code == 200 and headers["Content-Type"] == "image/png"
    assert image.startswith(b"\x89PNG") and len(example["text"].split(".")) == 9


def test_the_load_benchmark_runs(server, tmp_path):
    out = tmp_path / "load.json"
    serve_helpers.run_cli(
        [
            "-m",
            "benchmarks.serve_load",
            f"--url={server.url}",
            "--requests=40",
            "--clients=2",
            "--sweep_clients=1,3",
            "--warmup=2",
            f"--out={out}",
        ]
    )
    result = json.loads(out.read_text())
    assert result["errors"] == 0 and result["requests"] == 40
    assert set(result["latency_ms"]) >= {"p50", "p95", "p99"}
    assert result["requests_per_second"] > 0
    assert [one["clients"] for one in result["sweep"]] == [1, 3]
    for one in result["sweep"]:
        assert one["errors"] == 0 and one["requests_per_second"] > 0
        assert set(one["latency_ms"]) >= {"p50", "p95", "p99"}
    assert result["command"].startswith("python -m benchmarks.serve_load")


def _assert_one_line_error(completed, *fragments):
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0]


def test_importing_the_cli_does_not_import_tensorflow():
    completed = serve_helpers.run_cli(
        [
            "-c",
            "import sys, experiments.serve; "
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])",
        ]
    )
    assert completed.stdout.strip() == "[]", completed.stderr


def test_cli_refuses_what_is_not_an_export(tmp_path):
    completed = serve_helpers.run_cli(
        ["-m", "experiments.serve", f"--model={tmp_path}"], check=False
    )
    _assert_one_line_error(completed, "is not an export")
    completed = serve_helpers.run_cli(
        ["-m", "experiments.serve", f"--model={tmp_path / 'none'}"],
        check=False,
    )
    _assert_one_line_error(completed, "is not a directory")
    completed = serve_helpers.run_cli(["-m", "experiments.serve"], check=False)
    _assert_one_line_error(completed, "--model is required")
    completed = serve_helpers.run_cli(
        ["-m", "experiments.serve", f"--model={tmp_path}", "--port=70000"],
        check=False,
    )
    _assert_one_line_error(completed, "--port must be in 0..65535")


def test_cli_refuses_a_port_in_use(cosal_export):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = serve_helpers.run_cli(
            [
                "-m",
                "experiments.serve",
                f"--model={cosal_export}",
                f"--port={port}",
            ],
            check=False,
        )
    _assert_one_line_error(completed, f"127.0.0.1:{port}", "in use")


@pytest.mark.slow
def test_a_referit_export_is_served_unchanged(tmp_path, referit_smoke_run):
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    _, export_dir = referit_smoke_run
    examples = task_lib.get_task_class("referit")().serving_examples()
    image = bytes(examples["serving_bytes"]["image_bytes"][0])
    text = examples["serving_bytes"]["text"][0].decode()
    expected = _direct(export_dir, image, text)
    server = serve_helpers.Server(export_dir, tmp_path / "serve.log")
    try:
        assert server.name == "referit"
        url = f"{server.url}/v1/models/referit:predict"
        code, answer = request_json(
            "POST", url, {"instances": [_instance(image, text)]}
        )
        assert code == 200, answer
        prediction = answer["predictions"][0]
        assert set(prediction) == {"png_bytes", "mask"}
        png = base64.b64decode(prediction["png_bytes"]["b64"])
        assert png == bytes(expected["png_bytes"])
        with Image.open(io.BytesIO(image)) as photo:
            size = photo.size
        with Image.open(io.BytesIO(png)) as picture:
            assert picture.format == "PNG" and picture.size == size
        np.testing.assert_array_equal(prediction["mask"], expected["mask"])
        # Its bytes signature takes one photograph a call: a batch of two
        # is refused as a whole, with the signature's reason.
        code, answer = request_json(
            "POST", url, {"instances": [_instance(image, text)] * 2}
        )
        assert (
            code == 400 and "one image and one expression" in (answer["error"])
        )
        code, answer = request_json("POST", url, {"instances": []})
        assert code == 400
        code, info = request_json("GET", server.url + "/examples")
        assert info["task"] == "referit" and info["explain"] is False
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()
