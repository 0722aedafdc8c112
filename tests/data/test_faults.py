"""The broken copy notebook 04 checks: three planted faults, each one error of its kind; the source untouched."""
import json

import pytest

from conftest import tree_digest
from tutorial_lib.data.check import check_report
from tutorial_lib.data.faults import FAULTS, broken_copy
from tutorial_lib.errors import UserError


def test_the_copy_fails_the_check_with_exactly_the_planted_kinds(tiny_dataset, tmp_path):
    before = tree_digest(tiny_dataset)
    broken = broken_copy(tiny_dataset, tmp_path / "broken")
    assert tree_digest(tiny_dataset) == before
    report = check_report(broken, tmp_path / "check", progress=False)
    assert not report.check_pass
    assert sorted({p.kind for p in report.errors}) == sorted(FAULTS)
    again = broken_copy(tiny_dataset, broken)  # replaces an earlier copy
    data = json.loads((again / "annotations" / "instance_train.json").read_text(encoding="utf-8"))
    assert data["annotations"][0]["segmentation"] == [[10, 10, 20, 20]]


def test_it_never_breaks_the_source_in_place(tiny_dataset):
    with pytest.raises(UserError, match="would overwrite"):
        broken_copy(tiny_dataset, tiny_dataset)
