"""The page at / in a real browser: Debian's Chromium, headless, driven by selenium.

Opens a GrabCut image, clicks on the object (left) and the background (right), undoes, keeps
the object, downloads the label map and checks it against isegm.predict for the clicks the
server received; a corrupt file shows the server's message. Skipped, with the reason, where
Chromium or its driver is not installed (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import json
import shutil
import time

import cv2
import numpy as np
import pytest

from isegm.predict import read_image
from tests.serve.conftest import OBJECT_CLICK, reference_predictor

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _skip_reason() -> str | None:
    if CHROMIUM is None or DRIVER is None:
        return "Chromium or chromedriver not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install selenium)"
    return None


@pytest.fixture
def browser(tmp_path):
    reason = _skip_reason()
    if reason:
        print(f"SKIPPED browser test: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900"):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=options)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(driver, condition, what: str, timeout: float = 180.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: condition(d), message=f"timed out waiting for {what}"
    )


def _data(driver, key: str) -> str | None:
    return driver.execute_script(f"return document.getElementById('canvas').dataset.{key};")


def _click_image(driver, x: float, y: float, right: bool = False) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "canvas")
    rect = driver.execute_script(
        "const r = document.getElementById('canvas').getBoundingClientRect();"
        "return [r.width, r.height, S.width, S.height];"
    )
    w, h, iw, ih = rect
    dx, dy = (x + 0.5) * w / iw - w / 2, (y + 0.5) * h / ih - h / 2
    chain = ActionChains(driver).move_to_element_with_offset(canvas, round(dx), round(dy))
    (chain.context_click() if right else chain.click()).perform()


def test_annotate_in_the_browser(server, browser, grabcut_dir, model, tmp_path):
    from selenium.webdriver.common.by import By

    url, service = server
    driver = browser
    stem, (cx, cy) = OBJECT_CLICK
    path = grabcut_dir / "data_GT" / f"{stem}.jpg"
    driver.get(url + "/")
    driver.find_element(By.ID, "file").send_keys(str(path))
    _wait(driver, lambda d: _data(d, "session") == "1", "the session")

    _click_image(driver, cx, cy)
    _wait(driver, lambda d: _data(d, "overlay") == "1", "the mask overlay")
    assert "ms per click" in driver.find_element(By.ID, "status").text
    # the overlay is drawn: the pixel under the click is not the image's any more
    image = read_image(path)
    shown = driver.execute_script(
        f"return Array.from(ctx.getImageData({cx}, {cy}, 1, 1).data.slice(0, 3));"
    )
    assert np.abs(np.asarray(shown, float) - image[cy, cx]).max() > 10

    _click_image(driver, 20, 20, right=True)
    _wait(driver, lambda d: _data(d, "clicks") == "2", "the background click")
    driver.find_element(By.ID, "undo").click()
    _wait(driver, lambda d: _data(d, "clicks") == "1", "the undo")
    clicks = driver.execute_script("return S.clicks;")
    assert len(clicks) == 1 and clicks[0][2] is True
    assert abs(clicks[0][0] - cx) <= 2 and abs(clicks[0][1] - cy) <= 2

    driver.find_element(By.ID, "next").click()
    _wait(driver, lambda d: _data(d, "objects") == "1", "the finished object")
    driver.find_element(By.ID, "download-png").click()
    target = driver.downloads / f"{stem}_labels.png"
    _wait(driver, lambda d: target.is_file() and target.stat().st_size > 0, "the download", 60)
    time.sleep(0.2)
    labels = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
    assert labels.shape == image.shape[:2]
    ref = reference_predictor(model, service.config)
    ref.set_image(image)
    expected, _ = ref.predict([tuple(c) for c in clicks])
    np.testing.assert_array_equal(labels, expected.astype(np.uint8))
    gt = cv2.imread(str(next((grabcut_dir / "boundary_GT").glob(f"{stem}.*"))), 0) == 255
    # the mask is the clicked object (how much of it one click covers is the model's business)
    assert expected[cy, cx] and (expected & gt).sum() / expected.sum() > 0.9
    driver.find_element(By.ID, "download-coco").click()
    coco = driver.downloads / f"{stem}_coco.json"
    _wait(driver, lambda d: coco.is_file() and coco.stat().st_size > 0, "the COCO download", 60)
    time.sleep(0.2)
    doc = json.loads(coco.read_text())
    (ann,) = doc["annotations"]
    assert ann["id"] == 1 and ann["area"] == int(expected.sum())

    # a file the server cannot read: its message is shown
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    driver.find_element(By.ID, "file").send_keys(str(bad))
    status = driver.find_element(By.ID, "status")
    _wait(driver, lambda d: status.get_attribute("data-error") == "1", "the error message", 60)
    assert "cannot read" in status.text and "415" in status.text
