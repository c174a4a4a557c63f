"""The README's Python quick start runs as written (issue 15, item 5)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_quick_start_runs_as_written():
    text = README.read_text()
    section = text[text.index("## From Python"):]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "no python block in the README's 'From Python' section"
    program = blocks[0]
    assert "import librewire" in program and len(program.strip().splitlines()) <= 12
    exec(compile(program, "README.md", "exec"), {})  # its asserts are the test
