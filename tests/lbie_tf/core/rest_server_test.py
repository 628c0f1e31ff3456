"""Tests of the REST server's core, on a fake model (no TensorFlow): the
JSON mapping, routing and errors, request batching and the HTTP layer."""

import base64
import http.client
import json
import socket
import threading
import time

import numpy as np
import pytest

from lbie_tf.core import request_batcher, rest_json, rest_server, served_model
from lbie_tf.core.rest_json import SignatureInfo, TensorInfo


class FakeModel:
    """`serving_bytes` echoes the image bytes reversed as png_bytes and
    scores each text by its length; a text "bad" fails the call, naming
    its index as the core's decoder does; `one_only` takes one instance a
    call. `delay` slows every call, so that calls queue up."""

    task_name = "fake"
    signature_defs = {"serving_bytes": {"inputs": {}}}

    def __init__(self, delay=0.0):
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()
        string = TensorInfo("string", (None,))
        self.signatures = {
            "serving_bytes": SignatureInfo(
                inputs={"image_bytes": string, "text": string},
                outputs={
                    "png_bytes": string,
                    "score": TensorInfo("float32", (None, 2)),
                },
            ),
            "one_only": SignatureInfo(
                inputs={"image_bytes": string, "text": string},
                outputs={"png_bytes": string},
            ),
            "pixels": SignatureInfo(
                inputs={"image": TensorInfo("uint8", (None, 2, 2))},
                outputs={"total": TensorInfo("int64", (None,))},
            ),
        }

    def call(self, name, inputs):
        with self.lock:
            self.calls.append((name, len(next(iter(inputs.values())))))
        time.sleep(self.delay)
        if name == "pixels":
            return {"total": inputs["image"].sum(axis=(1, 2))}
        texts = inputs["text"]
        for index, text in enumerate(texts):
            if text == b"bad":
                raise served_model.SignatureError(
                    f"text[{index}] is bad; image_bytes[{index}] is fine"
                )
        if name == "one_only" and len(texts) != 1:
            raise served_model.SignatureError("one instance a call")
        return {
            "png_bytes": np.array(
                [image[::-1] for image in inputs["image_bytes"]], dtype=object
            ),
            "score": np.array(
                [[len(t), 0.5] for t in texts], dtype=np.float32
            ).reshape(-1, 2),
        }


def _app(model=None, **kwargs):
    return rest_server.RestApp(model or FakeModel(), **kwargs)


def _post(app, path, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = app.handle("POST", path, str(len(data)), lambda n: data[:n])
    return response.status, json.loads(response.body)


def _b64(data):
    return {"b64": base64.b64encode(data).decode()}


def _instance(image=b"abc", text="hello"):
    return {"image_bytes": _b64(image), "text": text}


_PREDICT = "/v1/models/fake:predict"


# === Messages ===

_TF_MESSAGES = [
    (
        "Graph execution error:\n\nDetected at node map/while/Assert/Assert "
        "defined at (most recent call last):\n<stack traces unavailable>\n"
        "assertion failed: [image_bytes[0] is neither a PNG nor a JPEG file "
        '(its first bytes are \\"hello\\"); send the bytes of a PNG or JPEG '
        "file]\n\t [[{{node map/while/Assert/Assert}}]] "
        "[Op:__inference_signature_wrapper_serve_bytes_3549]",
        "image_bytes[0] is neither a PNG nor a JPEG file (its first bytes "
        'are "hello"); send the bytes of a PNG or JPEG file',
    ),
    (
        "Graph execution error:\n\nDetected at node Assert_2/Assert defined "
        "at (most recent call last):\n<stack traces unavailable>\nassertion "
        "failed: [Unknown word(s):] [blorp] [Known: a, b.]\n\t [[{{node "
        "Assert_2/Assert}}]] [Op:__inference_signature_wrapper_3549]",
        "Unknown word(s): [blorp] [Known: a, b.]",
    ),
    (
        "Graph execution error:\n\nDetected at node "
        "map/while/cond_1/DecodePng defined at (most recent call last):\n"
        "<stack traces unavailable>\nInvalid PNG data, size 50\n\t [[{{node "
        "map/while/cond_1/DecodePng}}]] [Op:__inference_x_1]",
        "Invalid PNG data, size 50",
    ),
    (
        "assertion failed: [one per call; lengths are] [2] [1]",
        "one per call; lengths are [2] [1]",
    ),
]


@pytest.mark.parametrize("message, expected", _TF_MESSAGES)
def test_signature_error_message_keeps_what_is_wrong(message, expected):
    assert served_model.signature_error_message(message) == expected


# === JSON mapping ===


def test_row_format_round_trip():
    status, answer = _post(
        _app(), _PREDICT, {"instances": [_instance(), _instance(b"xy", "hi")]}
    )
    assert status == 200
    first, second = answer["predictions"]
    assert base64.b64decode(first["png_bytes"]["b64"]) == b"cba"
    assert base64.b64decode(second["png_bytes"]["b64"]) == b"yx"
    assert first["score"] == [5.0, 0.5] and second["score"] == [2.0, 0.5]


def test_columnar_format_answers_outputs():
    body = {
        "inputs": {
            "image_bytes": [_b64(b"ab"), _b64(b"cd")],
            "text": ["a", "bcd"],
        }
    }
    status, answer = _post(_app(), _PREDICT, body)
    assert status == 200
    assert answer["outputs"]["score"] == [[1.0, 0.5], [3.0, 0.5]]
    assert [
        base64.b64decode(v["b64"]) for v in answer["outputs"]["png_bytes"]
    ] == [
        b"ba",
        b"dc",
    ]


def test_one_input_and_one_output_drop_the_names():
    # TF Serving's rule for single-input and single-output signatures.
    body = {"signature_name": "pixels", "instances": [[[1, 2], [3, 4]]]}
    assert _post(_app(), _PREDICT, body) == (200, {"predictions": [10]})
    body = {"signature_name": "pixels", "inputs": [[[1, 2], [3, 4]]] * 2}
    assert _post(_app(), _PREDICT, body) == (200, {"outputs": [10, 10]})


@pytest.mark.parametrize(
    "value, fragment",
    [
        ([[1, 2], [3]], "ragged"),
        ([[1, 2], [3, 256]], "256 does not fit in uint8"),
        ([[1, 2], [3, 1.5]], "must hold integers of uint8"),
        ([[1, 2], [3, "4"]], "found a string"),
        ([[1, 2], [3, True]], "found a boolean"),
        ([[1, 2, 3], [4, 5, 6]], "has shape [1, 2, 3]"),
        (7, "nested list of rank 2"),
    ],
)
def test_numeric_inputs_are_checked(value, fragment):
    body = {"signature_name": "pixels", "instances": [value]}
    status, answer = _post(_app(), _PREDICT, body)
    assert status == 400 and fragment in answer["error"], answer


def test_outputs_that_are_not_utf8_travel_as_b64():
    assert rest_json.to_json(np.array([b"ok", b"\xff"], object), "x") == [
        "ok",
        {"b64": "/w=="},
    ]
    assert rest_json.to_json(np.array([b"ok"], object), "x_bytes") == [
        {"b64": "b2s="}
    ]


def test_numbers_are_written_exactly_and_short():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(1000) * 10.0 ** rng.integers(-30, 30, 1000)
    floats = np.concatenate([values, [0.1, -0.0, 1e-45, 3.4028235e38]]).astype(
        np.float32
    )
    text = rest_json.dumps({"x": rest_json.to_json(floats, "x")})
    read = np.array(json.loads(text)["x"], np.float32)
    np.testing.assert_array_equal(read, floats)
    # The shortest decimal of the float32, not its double's 17 digits.
    assert rest_json.dumps(np.float32([0.1, 0.5])) == b"[0.1,0.5]"
    # Slices that are not C-contiguous, 0-d arrays and numpy scalars too.
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert json.loads(rest_json.dumps(grid[:, 1])) == [1, 5, 9]
    columns = np.float32([[0.1, 7.0], [0.2, 8.0]])[:, 0]
    assert rest_json.dumps(columns) == b"[0.1,0.2]"
    assert rest_json.dumps(np.float16([0.5])) == b"[0.5]"
    assert rest_json.dumps([np.array(3), np.int64(4), np.float32(2.5)]) == (
        b"[3,4,2.5]"
    )
    # JSON has no NaN: non-finite values are null.
    assert rest_json.dumps(np.float32([np.nan, np.inf])) == b"[null,null]"


# === Errors ===


def test_a_bad_instance_in_a_batch_is_named_by_its_index():
    model = FakeModel()
    body = {"instances": [_instance(), _instance(), _instance(text="bad")]}
    status, answer = _post(_app(model), _PREDICT, body)
    assert status == 400
    # Renumbered from the call of that instance alone.
    assert answer["error"] == (
        "instances[2]: text[2] is bad; image_bytes[2] is fine"
    )
    body = {"inputs": {"image_bytes": [_b64(b"a")] * 2, "text": ["a", "bad"]}}
    status, answer = _post(_app(model), _PREDICT, body)
    assert status == 400 and answer["error"].startswith("instance 1: text[1]")


def test_a_batch_refused_as_a_whole_says_so():
    body = {"signature_name": "one_only", "instances": [_instance()] * 2}
    status, answer = _post(_app(), _PREDICT, body)
    assert status == 400
    assert "refused the batch of 2 instances as a whole" in answer["error"]
    assert "one instance a call" in answer["error"]


def test_the_limits():
    app = _app()
    too_many = {"instances": [_instance()] * (rest_json.MAX_INSTANCES + 1)}
    status, answer = _post(app, _PREDICT, too_many)
    assert status == 400 and "MAX_INSTANCES" in answer["error"]
    long_text = "a" * (rest_json.MAX_STRING_BYTES + 1)
    status, answer = _post(
        app, _PREDICT, {"instances": [_instance(text=long_text)]}
    )
    assert status == 400 and "MAX_STRING_BYTES" in answer["error"]

    def never(length):
        raise AssertionError("the body must not be read")

    response = app.handle(
        "POST", _PREDICT, str(rest_server.MAX_BODY_BYTES + 1), never
    )
    assert response.status == 413
    for length, status in ((None, 411), ("12x", 400), ("-1", 400)):
        assert app.handle("POST", _PREDICT, length, never).status == status


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{", "malformed JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b'"x"', "must be a JSON object"),
        (b'{"instances": {}}', '"instances" must be a list'),
        (b'{"instances": [1]}', "must be an object with the inputs"),
        (
            b'{"instances": [{"text": "a", "image_bytes": "b", "x": 1}]}',
            "unknown ['x']",
        ),
        (
            b'{"instances": [{"text": "a", "image_bytes": {"b64": 1}}]}',
            '{"b64"',
        ),
        (b'{"instances": [{"text": "\\ud800", "image_bytes": "b"}]}', "UTF-8"),
        (b'{"signature_name": 3, "instances": []}', "must be a string"),
        (b'{"inputs": {"text": ["a"]}}', "missing ['image_bytes']"),
        (b'{"inputs": {"text": [], "image_bytes": []}}', "hold no instances"),
    ],
)
def test_bad_bodies(body, fragment):
    status, answer = _post(_app(), _PREDICT, body)
    assert status == 400 and fragment in answer["error"], answer
    assert "\n" not in answer["error"]


def test_explain_without_a_hook_is_404_and_with_one_draws():
    status, answer = _post(
        _app(), "/v1/models/fake:explain", {"instances": [_instance()]}
    )
    assert status == 404 and "no explanation" in answer["error"]
    seen = []

    def explain(text, outputs):
        seen.append((text, dict(outputs)))
        return None if text == "none" else np.zeros((2, 3, 3), np.uint8)

    app = _app(explain=explain)
    body = {"instances": [_instance(text="hi"), _instance(text="none")]}
    status, answer = _post(app, "/v1/models/fake:explain", body)
    assert status == 200
    first, second = answer["explanations"]
    assert base64.b64decode(first["png_bytes"]["b64"]).startswith(b"\x89PNG")
    assert second is None
    assert seen[0][0] == "hi" and seen[0][1]["png_bytes"] == b"cba"


def test_names_paths_and_methods():
    app = _app(name="mine")
    assert app.handle("GET", "/v1/models/mine", None, None).status == 200
    assert app.handle("GET", "/v1/models/fake", None, None).status == 404
    response = app.handle("POST", "/v1/models/mine", "2", lambda n: b"{}")
    assert response.status == 405 and ("Allow", "GET") in response.headers
    assert app.handle("GET", "/", None, None).content_type.startswith(
        "text/html"
    )
    assert app.handle("GET", "/examples", None, None).status == 200
    assert app.handle("HEAD", "/", None, None).status == 200
    assert app.handle("GET", "/x", None, None).status == 404


# === Batching ===


def test_concurrent_calls_are_merged_and_split_back():
    model = FakeModel(delay=0.05)
    batcher = request_batcher.RequestBatcher(model, max_instances=8)
    results, errors = {}, {}

    def client(index):
        text = b"bad" if index == 5 else b"t" * index
        inputs = {
            "image_bytes": np.array([bytes([index])], dtype=object),
            "text": np.array([text], dtype=object),
        }
        try:
            results[index] = batcher.call("serving_bytes", inputs, 1)
        except served_model.SignatureError as error:
            errors[index] = str(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
        time.sleep(0.002)
    for thread in threads:
        thread.join()
    # Each call gets its own answer; the bad one fails alone.
    assert errors == {5: "text[0] is bad; image_bytes[0] is fine"}
    for index, outputs in results.items():
        assert outputs["png_bytes"].tolist() == [bytes([index])]
        assert outputs["score"].tolist() == [[float(index), 0.5]]
    sizes = [size for _, size in model.calls]
    assert max(sizes) > 1, sizes
    assert max(sizes) <= 8


def test_a_signature_that_refuses_merged_batches_is_not_merged_again():
    model = FakeModel(delay=0.05)
    refused = []
    batcher = request_batcher.RequestBatcher(
        model, on_unmergeable=refused.append
    )
    inputs = {
        "image_bytes": np.array([b"a"], dtype=object),
        "text": np.array([b"a"], dtype=object),
    }

    def burst():
        threads = [
            threading.Thread(target=batcher.call, args=("one_only", inputs, 1))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    burst()
    assert refused == ["one_only"]
    model.calls.clear()
    burst()
    assert {size for _, size in model.calls} == {1}


# === HTTP ===


@pytest.fixture
def http_server():
    server = rest_server.RestServer(_app(), "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _connection(server):
    host, port = server.server_address[:2]
    return http.client.HTTPConnection(host, port, timeout=30)


def test_keep_alive_serves_several_requests_on_one_connection(http_server):
    connection = _connection(http_server)
    body = json.dumps({"instances": [_instance()]})
    for _ in range(3):
        connection.request("POST", _PREDICT, body)
        response = connection.getresponse()
        assert response.status == 200 and not response.will_close
        assert json.loads(response.read())["predictions"]
    connection.request("POST", _PREDICT, "{")
    response = connection.getresponse()
    assert response.status == 400 and not response.will_close
    response.read()
    connection.close()


def test_expect_100_continue_refuses_a_large_body_before_it_is_sent(
    http_server,
):
    connection = _connection(http_server)
    connection.putrequest("POST", _PREDICT)
    connection.putheader("Content-Length", str(rest_server.MAX_BODY_BYTES + 1))
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "MAX_BODY_BYTES" in json.loads(response.read())["error"]
    connection.close()


@pytest.mark.parametrize(
    "line, status",
    [(b"GET / HTTP/x.y", 400), (b"BREW / HTTP/1.1", 501)],
)
def test_http_errors_of_the_request_line_are_json(http_server, line, status):
    with socket.create_connection(http_server.server_address[:2]) as raw:
        raw.sendall(line + b"\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.split()[1] == str(status), head
    assert "application/json" in head
    assert json.loads(body)["error"]


def test_a_port_in_use_is_a_usage_error(http_server):
    port = http_server.server_address[1]
    from lbie_tf.core import errors

    with pytest.raises(errors.UsageError, match="in use"):
        rest_server.RestServer(_app(), "127.0.0.1", port)
