import json

import pytest

from infonorm.quiz import report as report_module
from infonorm.quiz.claims import Claim, Context, run
from infonorm.quiz.claims.engine import holds
from infonorm.quiz.report import write_report


def _results():
    claims = [
        Claim(
            "P1.a",
            "P1",
            "a statement <with> markup & more",
            lambda ctx: holds(True, expected=1.0, measured=1.0, reference="ref"),
        ),
        Claim(
            "P3.line3",
            "P3",
            "σ.grad = …",
            lambda ctx: holds(
                False,
                expected=[1.0, 2.0],
                measured=[1.0, -2.0],
                reference="autograd",
                note="sign error",
            ),
        ),
    ]
    return run(claims, Context())


def test_report_writes_claims_meta_and_escaped_page(tmp_path):
    out = write_report(_results(), tmp_path / "r", {"seed": 3, "command": "infonorm reproduce"})
    entries = json.loads((out / "claims.json").read_text())
    assert [e["id"] for e in entries] == ["P1.a", "P3.line3"]
    assert entries[1]["verdict"] == "refuted"
    page = (out / "index.html").read_text()
    assert "&lt;with&gt; markup &amp; more" in page
    assert "sign error" in page
    assert json.loads((out / "meta.json").read_text())["seed"] == 3


def test_failed_render_leaves_previous_report_intact(tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report(_results(), out, {"seed": 1})
    before = (out / "claims.json").read_text()

    def broken(*args):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report_module, "render_page", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(_results()[:1], out, {"seed": 2})
    assert (out / "claims.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_report_replaces_previous_one(tmp_path):
    out = tmp_path / "r"
    write_report(_results(), out, {})
    write_report(_results()[:1], out, {})
    assert len(json.loads((out / "claims.json").read_text())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_report_refuses_a_file_as_folder(tmp_path):
    target = tmp_path / "f"
    target.write_text("x")
    with pytest.raises(ValueError, match="folder"):
        write_report(_results(), target, {})


def test_quick_reproduce_builds_a_complete_page(tmp_path):
    import re

    from infonorm.quiz.claims import all_claims
    from infonorm.quiz.cli import main

    out = tmp_path / "report"
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    entries = json.loads((out / "claims.json").read_text())
    assert [e["id"] for e in entries] == [c.id for c in all_claims()]
    assert not [e["id"] for e in entries if e["verdict"] == "error"]
    page = (out / "index.html").read_text()
    for entry in entries:
        assert f"id='{entry['id']}'" in page
    images = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(images) >= 20
    missing = [src for src in images if not (out / src).is_file()]
    assert not missing
    for section in ("Problem 1", "Problem 2", "Problem 3", "How to reproduce"):
        assert section in page
