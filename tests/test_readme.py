"""The README's library example runs as written (on a small synthetic set)."""

import re
from pathlib import Path

from htr_ssl.data.synthetic import GenerateConfig, generate

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"## As a library.*?```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README lost its library example"
    generate(GenerateConfig(out_dir=str(tmp_path / "datasets" / "synthetic"), n_writers=10,
                            forms_per_writer=1, lines_per_form=5, workers=1,
                            system_fonts=False))
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})
    assert (tmp_path / "runs" / "lib" / "best.pt").exists()
    assert "Row(id=" in capsys.readouterr().out
