"""The real Tk demo under Xvfb, driven with xdotool: clicks, keys, the saved mask, a screenshot.

The demo writes a JSON status file (``--status-file``) with the number of predicted clicks, a
busy flag and where the image is on the screen, so the test clicks exact image pixels and waits
for predictions without sleeping blindly; ``--save-path`` makes Ctrl+S save without a dialog.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_fakes import disk, tiny_checkpoint  # tests/demo is on sys.path

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TITLE = "MST interactive segmentation"
# Every wait below polls for a state; this bound is only a safety net against a hung demo
# (a loaded CI machine can take minutes to start Python, torch and Tk).
SAFETY_S = 600.0


# --------------------------------------------------------------------------- X server
@pytest.fixture(scope="module")
def display():
    """A private Xvfb display; Xvfb picks a free number itself (-displayfd)."""
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install xvfb xdotool)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + SAFETY_S
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = pipe.read(1)
            if not chunk:
                break
            number += chunk
    if not number.strip().isdigit():
        proc.kill()
        pytest.fail("Xvfb did not start (no display number reported)")
    yield f":{int(number)}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def xdotool(display: str, *args: str, timeout: float = SAFETY_S) -> str:
    out = subprocess.run(
        ["xdotool", *args],
        env=dict(os.environ, DISPLAY=display),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return out.stdout.strip()


def screenshot(display: str, path: Path) -> np.ndarray:
    """The whole screen as RGB (Pillow's X grabber, else ImageMagick's ``import``)."""
    try:
        from PIL import ImageGrab

        ImageGrab.grab(xdisplay=display).convert("RGB").save(path)
    except Exception:  # noqa: BLE001 - Pillow built without XCB: try ImageMagick
        if shutil.which("import") is None:
            pytest.skip("no screenshot tool: Pillow lacks XCB and ImageMagick is missing")
        subprocess.run(
            ["import", "-window", "root", str(path)],
            env=dict(os.environ, DISPLAY=display),
            check=True,
            timeout=SAFETY_S,
        )
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- the demo process
class Demo:
    """A running demo.py with its status file, log and window id."""

    def __init__(self, display: str, tmp: Path, cmd: list[str]) -> None:
        self.display = display
        self.status_path = tmp / "status.json"
        self.save_path = tmp / "saved_mask.png"
        self.log_path = tmp / "demo.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [*cmd, "--status-file", str(self.status_path), "--save-path", str(self.save_path)]
        # this tree's isegm first: the helper scripts run from tests/demo, where an installed
        # copy of another tree would otherwise be imported
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=dict(os.environ, DISPLAY=display, PYTHONPATH=path),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.window = self._wait_for_window()

    def _wait_for_window(self) -> str:
        """The demo's window id; fails at once with the demo's log if it exits first (a plain
        ``xdotool search --sync`` would wait the whole safety timeout for a dead process)."""
        deadline = time.monotonic() + SAFETY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"demo exited with {self.proc.returncode} before showing its "
                            f"window:\n{self.log()}")
            try:  # xdotool exits 1 while no window matches
                return xdotool(self.display, "search", "--name", TITLE, timeout=30).split()[0]
            except (subprocess.CalledProcessError, IndexError):
                time.sleep(0.2)
        pytest.fail(f"no demo window after {SAFETY_S:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def status(self, until, timeout: float = SAFETY_S) -> dict:
        """Polls the status file until ``until(status)`` holds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"demo exited with {self.proc.returncode}:\n{self.log()}")
            try:
                last = json.loads(self.status_path.read_text())
            except (OSError, ValueError):
                last = None
            if last is not None and until(last):
                return last
            time.sleep(0.1)
        pytest.fail(f"timeout waiting for the demo; last status {last}\n{self.log()}")

    def idle(self, **expected) -> dict:
        return self.status(
            lambda s: not s["busy"]
            and s["image_box"] is not None
            and all(s[k] == v for k, v in expected.items())
        )

    def click_pixel(self, status: dict, x: int, y: int, button: int) -> None:
        """Clicks the screen point at the centre of image pixel (x, y)."""
        ox, oy = status["image_origin"]
        sx = round(ox + (x + 0.5) * status["scale"])
        sy = round(oy + (y + 0.5) * status["scale"])
        xdotool(self.display, "mousemove", "--sync", str(sx), str(sy), "click", str(button))

    def key(self, *keys: str) -> None:
        xdotool(self.display, "key", "--window", self.window, *keys)

    def saved_mask(self, timeout: float = SAFETY_S) -> np.ndarray:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.save_path.exists():
            time.sleep(0.1)
        assert self.save_path.exists(), self.log()
        return cv2.imread(str(self.save_path), cv2.IMREAD_UNCHANGED)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


@pytest.fixture(scope="module")
def grabcut_image(grabcut_dir: Path) -> Path:
    path = grabcut_dir / "data_GT" / "106024.jpg"
    if not path.is_file():
        pytest.skip(f"GrabCut image not found: {path}")
    return path


def held_demo(display: str, image: Path, tmp_path: Path, hold: Path) -> Demo:
    """The demo with DiskNet (radius 10, no zoom-in) that waits while ``hold`` exists."""
    return Demo(
        display,
        tmp_path,
        [sys.executable, str(HERE / "run_demo_with_disknet.py"), f"10:@{hold}", "--cpu",
         "--no-zoom-in", "--image", str(image)],
    )


def assert_not_blank(shot: np.ndarray, box: list[int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    region = shot[max(0, y0) : y1, max(0, x0) : x1]
    assert shot.std() > 10, "screenshot is blank"
    assert region.size and region.std() > 10, "image area is blank"
    assert len(np.unique(region.reshape(-1, 3), axis=0)) > 500, "image area has few colours"
    return region


# --------------------------------------------------------------------------- tests
def test_demo_with_tiny_checkpoint(display: str, grabcut_image: Path, tmp_path: Path):
    """demo.py as a user starts it; the checkpoint's classifier is set to a constant positive
    logit, so every pixel the model sees is object and the saved mask is predictable."""
    ckpt = tiny_checkpoint(tmp_path / "tiny.pth", bias=6.0)
    demo = Demo(
        display,
        tmp_path,
        [sys.executable, "demo.py", "--cpu", "--checkpoint", str(ckpt), "--image",
         str(grabcut_image)],
    )
    try:
        status = demo.idle(clicks=0, image="106024.jpg")
        assert status["image_size"] == [481, 321]
        demo.click_pixel(status, 200, 150, 1)  # left: positive
        demo.click_pixel(status, 400, 60, 3)  # right: negative, queued behind the first
        status = demo.idle(clicks=2)
        assert status["error"] is None and status["last_click_seconds"] > 0
        demo.key("ctrl+s")
        mask = demo.saved_mask()
        status = demo.idle()
        assert status["saved"] == [str(demo.save_path)]

        assert mask.shape == (321, 481) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}  # object 1 has value 1, not 255
        assert mask[150, 200] == 1 and mask.sum() > 0

        shot = screenshot(display, tmp_path / "screenshot.png")
        region = assert_not_blank(shot, status["image_box"])
        red, green = region[..., 0].astype(float).mean(), region[..., 1].astype(float).mean()
        assert red > green + 20, "the mask overlay (red) is not visible"
    finally:
        demo.stop()


def test_demo_clicks_map_to_exact_pixels(display: str, grabcut_image: Path, tmp_path: Path):
    """With DiskNet (no zoom-in) the saved label map is known exactly: negative clicks, undo,
    finish object (Space), mouse-wheel zoom, right-drag pan and the pixel mapping are checked."""
    r = 15
    demo = Demo(
        display,
        tmp_path,
        [sys.executable, str(HERE / "run_demo_with_disknet.py"), str(r), "--cpu",
         "--no-zoom-in", "--image", str(grabcut_image)],
    )
    try:
        shape = (321, 481)
        s = demo.idle(clicks=0)
        demo.click_pixel(s, 150, 120, 1)
        demo.click_pixel(s, 160, 120, 3)
        demo.click_pixel(s, 300, 60, 1)
        s = demo.idle(clicks=3)
        demo.key("ctrl+z")  # undo the click at (300, 60)
        s = demo.idle(clicks=2)
        demo.key("space")  # finish object 1
        s = demo.idle(clicks=0, objects=1)

        # zoom in twice around the next object, then click it in the zoomed view
        cx = round(s["image_origin"][0] + 350.5 * s["scale"])
        cy = round(s["image_origin"][1] + 200.5 * s["scale"])
        xdotool(display, "mousemove", "--sync", str(cx), str(cy), "click", "4", "click", "4")
        zoomed = demo.status(lambda st: st["scale"] > s["scale"] * 1.3)
        # a right-button drag pans (and is not a negative click)
        xdotool(display, "mousedown", "3", "mousemove", "--sync", str(cx - 60), str(cy - 40),
                "mouseup", "3")
        panned = demo.status(lambda st: st["image_origin"] != zoomed["image_origin"])
        assert panned["scale"] == zoomed["scale"] and panned["pending_clicks"] == 0
        demo.click_pixel(panned, 350, 200, 1)
        demo.idle(clicks=1, objects=1)
        demo.key("ctrl+s")
        labels = demo.saved_mask()

        expected = np.zeros(shape, np.uint8)
        expected[disk(shape, 150, 120, r) & ~disk(shape, 160, 120, r)] = 1
        expected[disk(shape, 350, 200, r)] = 2
        assert labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, expected)

        status = demo.idle(saved=[str(demo.save_path)])
        shot = screenshot(display, tmp_path / "screenshot_zoomed.png")
        assert_not_blank(shot, status["image_box"])
    finally:
        demo.stop()


def test_window_stays_responsive_while_predicting(display: str, grabcut_image: Path,
                                                  tmp_path: Path):
    """A model held busy (it waits while a file exists, however fast the machine is): clicks
    made meanwhile are taken by the window at once (pending, drawn hollow) and predicted in
    order once it is released."""
    hold = tmp_path / "hold"
    demo = held_demo(display, grabcut_image, tmp_path, hold)
    try:
        s = demo.idle(clicks=0)
        hold.touch()  # from now on every prediction waits
        demo.click_pixel(s, 100, 100, 1)
        demo.click_pixel(s, 300, 100, 1)
        demo.click_pixel(s, 110, 100, 3)
        busy = demo.status(lambda st: st["busy"] and st["pending_clicks"] == 3)
        assert busy["clicks"] == 0
        assert "[busy]" in xdotool(display, "getwindowname", demo.window)
        hold.unlink()
        demo.idle(clicks=3, pending_clicks=0)
        assert "[busy]" not in xdotool(display, "getwindowname", demo.window)
        demo.key("ctrl+s")
        mask = demo.saved_mask()
        shape = (321, 481)
        expected = (disk(shape, 100, 100, 10) | disk(shape, 300, 100, 10)) & ~disk(
            shape, 110, 100, 10
        )
        np.testing.assert_array_equal(mask, expected.astype(np.uint8))
    finally:
        demo.stop()


def test_ctrl_r_status_and_ctrl_q_finishes_a_queued_save(display: str, grabcut_image: Path,
                                                         tmp_path: Path):
    """Ctrl+R says so (before: the stale "click predicted in ..." stayed). Ctrl+Q while a
    prediction runs drops nothing the user asked to save: the queued save is written, then the
    process ends at once (os._exit after flushing; Python's module teardown took 2-5 s)."""
    hold = tmp_path / "hold"
    demo = held_demo(display, grabcut_image, tmp_path, hold)
    try:
        s = demo.idle(clicks=0)
        demo.click_pixel(s, 100, 100, 1)
        s = demo.idle(clicks=1)
        assert s["message"].startswith("click predicted")
        demo.key("ctrl+r")
        s = demo.idle(clicks=0)
        assert s["message"] == "clicks reset"

        hold.touch()  # the next prediction waits until the test releases it
        demo.click_pixel(s, 200, 150, 1)
        demo.status(lambda st: st["busy"])
        demo.key("ctrl+s")
        demo.key("ctrl+q")
        demo.status(lambda st: st["message"] == "closing")
        hold.unlink()
        assert demo.proc.wait(timeout=SAFETY_S) == 0
        mask = cv2.imread(str(demo.save_path), cv2.IMREAD_UNCHANGED)
        assert mask is not None, demo.log()
        np.testing.assert_array_equal(mask, disk((321, 481), 200, 150, 10).astype(np.uint8))
        assert "Traceback" not in demo.log()
    finally:
        hold.unlink(missing_ok=True)
        demo.stop()
