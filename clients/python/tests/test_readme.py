"""The README's example, run as written against the test proxy (only the
address changes), so the documented usage keeps working."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from proxy import Proxy

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_example_runs(proxy: Proxy) -> None:
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert example, "README.md has a python example"
    source = example.group(1).replace("127.0.0.1:8980", proxy.address)
    run = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "b'alice'"
    assert lines[1] == "['user:1']"
    assert re.fullmatch(r"key not found [0-9a-f]{32}", lines[2]), lines[2]
    assert lines[3] == "b'{}'"
