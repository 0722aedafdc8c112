"""The executed walkthrough in docs/walkthrough/ (``make walkthrough``) must match the notebooks it was made from.

Skips while no executed copy is committed. Otherwise every notebook needs a copy whose recorded source hash is the
notebook's current one: editing a lesson without regenerating its walkthrough fails here, with the command to run.
"""
import importlib.util
import json
import re

import pytest

from conftest import REPO

WALKTHROUGH = REPO / "docs" / "walkthrough"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
COPIES = sorted(WALKTHROUGH.glob("*.ipynb"))

requires_copies = pytest.mark.skipif(not COPIES, reason="docs/walkthrough/ holds no executed notebook yet "
                                                       "(make walkthrough)")


def _build_module():
    spec = importlib.util.spec_from_file_location("walkthrough_build", WALKTHROUGH / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@requires_copies
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_walkthrough_copy_is_current(notebook):
    copy = WALKTHROUGH / notebook.name
    assert copy.exists(), f"docs/walkthrough/{notebook.name} is missing: run `make walkthrough`"
    recorded = json.loads(copy.read_text(encoding="utf-8"))["metadata"].get("walkthrough", {})
    assert recorded.get("source_hash") == _build_module().source_hash(notebook), (
        f"notebooks/{notebook.name} changed since docs/walkthrough/{notebook.name} was made: run "
        f"`make walkthrough` (or `python docs/walkthrough/build.py --only {notebook.name[:2]}`)")


@requires_copies
@pytest.mark.parametrize("copy", COPIES, ids=lambda p: p.name)
def test_walkthrough_copy_is_complete(copy):
    nb = json.loads(copy.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") is not None for c in code)
    assert not [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"], "an error output"
    views = [o for c in code for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in
             o.get("data", {})]
    if views:  # widgets reopen from the saved state instead of "model not found"
        state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        assert all(o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] in state for o in views)


@requires_copies
@requires_copies
@pytest.mark.parametrize("copy", COPIES, ids=lambda p: p.name)
def test_walkthrough_names_no_folder_of_the_build_machine(copy):
    text = copy.read_text(encoding="utf-8")
    found = re.findall(r'(?<![\w.~])/(?:work|tmp|root|home|Users|opt|usr|var)/[^"\\ ]*', text) + (
        [str(REPO)] if str(REPO) in text else [])
    assert not found, f"docs/walkthrough/{copy.name} shows absolute paths: {sorted(set(found))[:3]}"


def test_walkthrough_fits_in_15_mb():
    total = sum(p.stat().st_size for p in WALKTHROUGH.rglob("*") if p.is_file())
    assert total <= 15 * 2 ** 20, f"docs/walkthrough/ holds {total / 2 ** 20:.1f} MB"


def test_source_hash_ignores_outputs_but_not_sources():
    build = _build_module()
    nb = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {"tags": ["parameters"]}, "outputs": []}]}
    same = {"cells": [{**nb["cells"][0], "outputs": [{"output_type": "stream", "text": "1"}], "execution_count": 3}]}
    edited = {"cells": [{**nb["cells"][0], "source": "x = 2"}]}
    assert build.source_hash(nb) == build.source_hash(same) != build.source_hash(edited)
