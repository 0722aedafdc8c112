"""The notebooks in a real browser: JupyterLab driven by Chromium (Playwright), as a reader would use them.

Every notebook is copied into a temporary folder with its parameters cell set to the smoke run, opened in
JupyterLab, run with "Run All Cells", and checked: no error or warning output, and in 04 and 06 moving a slider
redraws the browser's picture. Screenshots are kept in ``output/browser/``. Needs Debian's ``/usr/bin/chromium``
(``apt-get install chromium``; CI installs it) and the ``playwright`` package; it never downloads a browser.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "output" / "browser"
TOKEN = "tutorial-browser-test"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
RUN_TIMEOUT_S = int(os.environ.get("BROWSER_RUN_TIMEOUT_S", 900))  # one "Run All" (05 trains eight tiny models)
# the cell (by its code in the notebook) whose slider is moved, and the key that moves it
SLIDERS = {"04_data.ipynb": ("tl.DatasetBrowser(dataset_dir)", "ArrowRight"),
           "06_predict.ipynb": ("tl.PredictionBrowser(", "End")}

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def smoke_copy(notebook, dest):
    """``notebook`` copied to ``dest`` with ``smoke = True`` appended to its parameters cell."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            cell["source"] = source.rstrip("\n") + "\nsmoke = True  # set by tests/test_browser.py\n"
            break
    else:
        raise AssertionError(f"{notebook.name} has no parameters cell")
    dest.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return dest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tutorial_lib_home):
    """A JupyterLab server on 127.0.0.1 over a smoke copy of the notebooks, with isolated settings."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements.txt)")
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    for notebook in NOTEBOOKS:
        smoke_copy(notebook, root / "notebooks" / notebook.name)
    shutil.copytree(REPO / "data", root / "data", ignore=shutil.ignore_patterns("remote_sense_sample", "intseg_*"))
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_RUNTIME_DIR"):
        path = root / ".jupyter" / name.lower()
        path.mkdir(parents=True)
        env[name] = str(path)
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    port = _free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    log = open(root / "lab.log", "w")
    server = subprocess.Popen([str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                               f"--port={port}", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
                               "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                _get(f"{url}/api/status?token={TOKEN}")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError("JupyterLab did not start: " + (root / "lab.log").read_text()[-2000:])
                time.sleep(1)
        yield url, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _wait_idle(page, url, timeout_s):
    """Until the kernel is idle, the status bar says Idle and no prompt shows [*]: twice, 2 s apart."""
    deadline = time.time() + timeout_s
    calm = 0
    while time.time() < deadline:
        sessions = _get(f"{url}/api/sessions?token={TOKEN}")
        kernel_idle = bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)
        status = page.locator(".jp-StatusBar-Widget").all_text_contents()
        busy_prompt = page.locator(".jp-InputPrompt", has_text="[*]").count() > 0
        calm = calm + 1 if kernel_idle and any("Idle" in s for s in status) and not busy_prompt else 0
        if calm >= 2:
            return
        time.sleep(2)
    raise AssertionError(f"the notebook did not finish within {timeout_s} s")


def _dismiss_news(page):
    no = page.locator(".jp-toast-button", has_text="No")
    if no.count():
        no.first.click()


def _run_all(page):
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _cell_index(notebook, code):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return next(i for i, c in enumerate(cells) if "".join(c["source"]).strip().startswith(code))


def _move_slider(page, notebook, code, key):
    """Move the slider of the cell whose code starts with ``code``; return the picture's src before and after."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(_cell_index(notebook, code))
    cell.scroll_into_view_if_needed()
    picture = cell.locator(".jp-OutputArea-output img").first
    picture.wait_for(state="visible", timeout=30000)
    before = picture.get_attribute("src")
    picture.screenshot(path=str(SHOTS / f"{notebook.stem}_slider_before.png"))
    handle = cell.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press(key)
    deadline = time.time() + 60
    while picture.get_attribute("src") == before and time.time() < deadline:
        time.sleep(0.5)
    picture.screenshot(path=str(SHOTS / f"{notebook.stem}_slider_after.png"))
    return before, picture.get_attribute("src"), cell


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)  # in order: 06 and 07 need 05's model
def test_notebook_runs_in_jupyterlab(notebook, lab, browser):
    url, root = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/lab/tree/notebooks/{notebook.name}?reset&token={TOKEN}")
        page.locator(".jp-Notebook").first.wait_for(timeout=120000)
        _wait_idle(page, url, 120)
        _dismiss_news(page)
        _run_all(page)
        time.sleep(3)
        _wait_idle(page, url, RUN_TIMEOUT_S)
        _dismiss_news(page)
        page.screenshot(path=str(SHOTS / f"{notebook.stem}.png"))
        errors = [e.text_content() for e in
                  page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]').all()]
        assert not errors, f"{notebook.name} printed errors or warnings:\n" + "\n---\n".join(e[:1500] for e in errors)
        assert page.locator(".jp-OutputArea-output", has_text="Error displaying widget").count() == 0
        if notebook.name in SLIDERS:
            before, after, cell = _move_slider(page, notebook, *SLIDERS[notebook.name])
            assert before and after and after != before, f"moving the slider in {notebook.name} redrew nothing"
            cell.screenshot(path=str(SHOTS / f"{notebook.stem}_browser.png"))
    finally:
        page.close()
