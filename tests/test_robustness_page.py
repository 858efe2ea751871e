"""docs/robustness.md says exactly what the robustness tests check."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _render() -> str:
    spec = importlib.util.spec_from_file_location(
        "robustness_page", ROOT / "scripts" / "robustness_page.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render()


def test_docs_page_is_rendered_from_the_cases():
    assert (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8") == _render(), (
        "docs/robustness.md is stale: run .venv/bin/python scripts/robustness_page.py "
        "> docs/robustness.md"
    )
