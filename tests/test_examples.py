"""The examples and the README's Python snippets run as documented."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from rendezvous import Rendezvous, load_deployment

ROOT = Path(__file__).parent.parent
FRAUD = ROOT / "examples" / "fraud" / "fraud.yaml"


def readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return [b for b in blocks if "from rendezvous" in b]


async def test_the_fraud_example_serves_in_process() -> None:
    dep = load_deployment(FRAUD).model_copy(update={"archive": "memory"})
    async with Rendezvous([dep]) as rv:
        runtime = rv.get("fraud")
        risky = await runtime.predict_one({"amount": 3000, "customer_id": "c-002"})
        safe = await runtime.predict_one({"amount": 30, "customer_id": "c-001"})
        assert (risky.prediction, risky.reason) == (1, "champion")
        assert safe.prediction == 0
        runtime.archive.flush()
        record = runtime.archive.get_request(risky.request_id)
        assert record is not None
        assert record.features == [3000, 22, 0.8]  # enriched from customers.csv


@pytest.mark.parametrize("snippet", readme_snippets())
async def test_readme_snippets_run(
    snippet: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the snippets use relative paths from the repository root; archives go to tmp_path
    monkeypatch.chdir(ROOT)
    body = snippet.replace("sqlite:///rendezvous.db", f"sqlite:///{tmp_path / 'r.db'}")
    if "await " in body:
        body = "async def _snippet():\n" + textwrap.indent(body, "    ")
        scope: dict[str, object] = {}
        exec(compile(body, "README.md", "exec"), scope)
        await scope["_snippet"]()  # type: ignore[operator]
    else:
        exec(compile(body, "README.md", "exec"), {})


def test_the_continuous_learning_example_serves_the_new_version(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "learning"
    shutil.copytree(ROOT / "examples" / "learning", folder)
    for script in ("make_model.py", "learn_inprocess.py"):
        out = subprocess.run(
            [sys.executable, script], cwd=folder, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last == "6.0 2", out.stdout  # y = 2x now, served by version 2
