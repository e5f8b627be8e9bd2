"""Runs the Python code blocks of README.md so the tour cannot go stale."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python blocks"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
