"""Drives the page of `python -m experiments.serve` in headless Chromium:
upload an image (or pick the example), type the text, submit, and the
edited image shown is the endpoint's answer for the same input.

Needs Debian's chromium and chromium-driver (`apt-get install -y
chromium chromium-driver`) and the selenium package; skipped without them.
SERVE_PAGE_SCREENSHOT=results/serve_page.png saves a screenshot of the page
after an edit.
"""

import base64
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.experiments import serve_helpers
from tests.experiments.serve_helpers import request_json

pytestmark = pytest.mark.multiprocess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_APT = "apt-get install -y --no-install-recommends chromium chromium-driver"
_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1400",
)
_WAIT_S = 120


def _browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip)"
    )
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(path)):
            pytest.skip(f"{path} is missing; install it with: {_APT}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in _ARGS:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def export_dir(request):
    # The shipped trained model: the page shows a real edit.
    export = os.environ.get("SERVE_PAGE_EXPORT")
    if export:
        return export
    return request.getfixturevalue("pretrained_cosal_export")


@pytest.fixture(scope="module")
def server(export_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("page_log") / "serve.log"
    server = serve_helpers.Server(export_dir, log, "--quiet")
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from lbie_tf import tasks  # noqa: F401
    from lbie_tf.core import task as task_lib

    task = task_lib.get_task_class("cosal")()
    return task.write_edit_example(
        tmp_path_factory.mktemp("example"), {"index": 3, "num_direct": 4}
    )


def _wait_until(browser, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, _WAIT_S).until(condition)


def _wait_for_state(browser, *states):
    """Waits until the page's body says it is in one of `states` (the page
    sets data-state: ready, busy, done or error)."""
    _wait_until(
        browser,
        lambda driver: (
            driver.find_element("tag name", "body").get_attribute("data-state")
            in states
        ),
    )
    return browser.find_element("tag name", "body").get_attribute("data-state")


def _shown_png(browser, element_id):
    source = browser.find_element("id", element_id).get_attribute("src")
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    return base64.b64decode(source[len(prefix) :])


def _shown_pixels(browser, element_id):
    """The pixels the browser decoded for an <img>, read from a canvas."""
    values, width, height = browser.execute_script(
        """
        const img = document.getElementById(arguments[0]);
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height);
        return [Array.from(data.data), canvas.width, canvas.height];
        """,
        element_id,
    )
    return np.asarray(values, np.uint8).reshape(height, width, 4)[..., :3]


def _endpoint_png(server, image_path, text):
    with open(image_path, "rb") as file:
        image = file.read()
    body = {
        "instances": [
            {
                "image_bytes": {"b64": base64.b64encode(image).decode()},
                "text": text,
            }
        ]
    }
    code, answer = request_json(
        "POST", f"{server.url}/v1/models/{server.name}:predict", body
    )
    assert code == 200, answer
    return base64.b64decode(answer["predictions"][0]["png_bytes"]["b64"])


def _set_text(browser, text):
    area = browser.find_element("id", "text")
    area.clear()
    area.send_keys(text)


def test_upload_an_image_and_see_its_edit(browser, server, example):
    browser.get(server.url + "/")
    _wait_for_state(browser, "ready")
    browser.find_element("id", "image").send_keys(os.fspath(example.image_path))
    _wait_until(
        browser,
        lambda driver: driver.find_element("id", "input-image").is_displayed(),
    )
    _set_text(browser, example.text)
    browser.find_element("id", "submit").click()
    assert _wait_for_state(browser, "done", "error") == "done", (
        browser.find_element("id", "error").text
    )
    shown = _shown_png(browser, "output-image")
    assert shown == _endpoint_png(server, example.image_path, example.text)
    with Image.open(io.BytesIO(shown)) as picture:
        expected = np.asarray(picture.convert("RGB"))
    np.testing.assert_array_equal(
        _shown_pixels(browser, "output-image"), expected
    )
    assert browser.find_element("id", "output-image").is_displayed()
    # CoSaL's Figure 5 of the same answer.
    assert browser.find_element("id", "explanation").is_displayed()
    assert _shown_png(browser, "explanation").startswith(b"\x89PNG")
    screenshot = os.environ.get("SERVE_PAGE_SCREENSHOT")
    if screenshot:
        browser.save_screenshot(screenshot)


def test_the_example_button_and_a_bad_text(browser, server):
    browser.get(server.url + "/")
    _wait_for_state(browser, "ready")
    browser.find_element("id", "example-0").click()
    code, info = request_json("GET", server.url + "/examples")
    text = info["examples"][0]["text"]
    _wait_until(
        browser,
        lambda driver: (
            driver.find_element("id", "text").get_attribute("value") == text
        ),
    )
    browser.find_element("id", "submit").click()
    assert _wait_for_state(browser, "done", "error") == "done"
    assert _shown_png(browser, "output-image").startswith(b"\x89PNG")

    _set_text(browser, text.replace(" is ", " is purple ", 1))
    browser.find_element("id", "submit").click()
    assert _wait_for_state(browser, "error") == "error"
    error = browser.find_element("id", "error").text
    assert error.startswith("Error: instances[0]:") and "purple" in error
