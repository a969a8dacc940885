"""The READMEs' Python examples, run as written against the test proxy (only
the address changes), so the documented usage keeps working: the client's
own README and the "Python client" section of the repository's README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from proxy import REPO, Proxy

CLIENT_README = REPO / "clients" / "python" / "README.md"
TOP_README = REPO / "README.md"


def example(text: str) -> str:
    block = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert block, "the text has a python example"
    return block.group(1)


def run(source: str, proxy: Proxy) -> list[str]:
    # The example must name the default address, or it would run against
    # whatever listens there instead of the test's proxy on a free port.
    assert "127.0.0.1:8980" in source, "the example calls the proxy at 127.0.0.1:8980"
    source = source.replace("127.0.0.1:8980", proxy.address)
    done = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_client_readme_example_runs(proxy: Proxy) -> None:
    lines = run(example(CLIENT_README.read_text()), proxy)
    assert lines[0] == "b'alice'"
    assert lines[1] == "['user:1']"
    assert re.fullmatch(r"key not found [0-9a-f]{32}", lines[2]), lines[2]
    assert lines[3] == "b'{}'"


def test_the_repository_readme_example_runs(proxy: Proxy) -> None:
    readme = TOP_README.read_text()
    section = re.search(r"^## Python client\n(.*?)^## ", readme, re.DOTALL | re.MULTILINE)
    assert section, "README.md has a `## Python client` section"
    source = example(section.group(1))
    assert len(source.strip().splitlines()) <= 14, "the example stays short"
    assert run(source, proxy) == ["b'hello'", "b'#1'"]
