"""A short run of benchmarks/serving_soak.py: a real server process (``python -m tutorial_lib --serve``) on
127.0.0.1 takes mixed good and bad requests over images of several sizes; no good request fails, every bad one
gets its 4xx in PaddleX's envelope, and the server is still ready afterwards. (The RSS targets are the
benchmark's, measured over 2,000 requests: docs/benchmarks.md.)"""
import re
import subprocess
import sys

from conftest import REPO


def test_short_soak_fails_no_good_request(quickstart_model, tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serving_soak.py"), "--model_dir",
                          str(quickstart_model[0]), "--requests", "60", "--clients", "4",
                          "--sizes", "256x256,320x192,640x480"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert re.search(r"60 requests \((\d+) good, (\d+) bad\)", out)
    good, bad = map(int, re.search(r"\((\d+) good, (\d+) bad\)", out).groups())
    assert good >= 15 and bad >= 15
    assert "good requests failed: 0 " in out and "bad requests with the wrong answer: 0 " in out
    assert "server still ready afterwards: True" in out
    rss = re.search(r"RSS: loaded\+warm (\d+) MB, after request 30 (\d+) MB", out)
    assert rss and int(rss.group(1)) > 100 and int(rss.group(2)) > 100  # a loaded model, measured
    row = re.search(r"^\| `tune_memory`.*\| 60 \((\d+) / (\d+)\) \| \*\*0\*\* \| \*\*0\*\* \|", out, re.M)
    assert row and tuple(map(int, row.groups())) == (good, bad)  # the markdown row run_all.py copies agrees
