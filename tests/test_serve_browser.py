"""`serve` in a real browser: Debian's headless Chromium driven through chromedriver (selenium).

.ci/run installs chromium and chromium-driver; where they are missing the test says so and skips.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.test_serve import _start_server, _stop

pytestmark = pytest.mark.slow


def _driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,800",
                     "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def _token(server) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stderr.readline().decode()
        if "token=" in line:
            return line.split("token=", 1)[1].split()[0]
    raise AssertionError("the server printed no address")


def _screen(driver) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"), dtype=float)


def _colourful(picture: np.ndarray) -> int:
    """Pixels far from grey: the generated picture, where the app's own screen is mostly dark and grey."""
    return int(((picture.max(axis=2) - picture.min(axis=2)) > 120).sum())


def test_the_page_loads_with_its_token_generates_and_asks_no_other_host(tmp_path):
    driver = _driver()
    server, port = _start_server(tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        token = _token(server)
        driver.get(f"{base}/")
        assert "missing or wrong token" in driver.page_source  # no token: refused
        driver.get(f"{base}/?token={token}")
        # textual-serve's page shows a Start button before it opens the session.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not driver.execute_script(
                "return document.querySelector('.xterm-helper-textarea') !== null"):
            start = driver.execute_script("return [...document.querySelectorAll('button, a')]"
                                          ".filter(b => /start/i.test(b.textContent))[0] || null")
            if start is not None:  # clicked by the page's own script: it may still be fading in
                driver.execute_script("arguments[0].click()", start)
            time.sleep(0.5)
        time.sleep(8)  # the app starts in its session and draws
        before = _screen(driver)
        textarea = driver.find_element("css selector", ".xterm-helper-textarea")
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        textarea.click()
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("g").key_up(Keys.CONTROL).perform()
        deadline = time.monotonic() + 60
        after = before
        while time.monotonic() < deadline:
            time.sleep(2)
            after = _screen(driver)
            if _colourful(after) > _colourful(before) + 2000:
                break
        assert _colourful(after) > _colourful(before) + 2000, "no picture appeared after ctrl+g"
        requests = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
        urls = {event["params"]["request"]["url"] for event in requests if event["method"] == "Network.requestWillBeSent"}
        elsewhere = {url for url in urls if not url.startswith(("data:", "blob:"))
                     and urlsplit(url).netloc not in (f"127.0.0.1:{port}", f"localhost:{port}")}
        assert urls and not elsewhere, elsewhere
    finally:
        driver.quit()
        log = _stop(server)
    assert "session opened" in log
