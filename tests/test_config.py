"""htr_ssl.config: plain data -> config dataclasses, the one check behind the commands'
`to_dataclass` and the pretext registry."""

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from htr_ssl.config import from_dict
from htr_ssl.pretext.registry import pretext_config


@dataclass
class Inner:
    p: float = 0.5


@dataclass
class Outer:
    name: str = "x"
    size: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_from_dict_recurses_and_checks_names_and_kinds():
    assert from_dict(Outer, {"name": 2024, "inner": {"p": 1}}) == Outer("2024", None, Inner(1))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['sise'\] for Outer; "
                                         r"valid: \['inner', 'name', 'size'\]"):
        from_dict(Outer, {"sise": 3})
    with pytest.raises(ValueError, match=r"^cfg.inner.p='abc': give a number$"):
        from_dict(Outer, {"inner": {"p": "abc"}}, "cfg.")
    with pytest.raises(ValueError, match=r"^size=0.5: give a whole number or null$"):
        from_dict(Outer, {"size": 0.5})


def test_pretext_options_get_the_same_checks():
    """The registry's messages: the pretext by name, and the option by where it sits."""
    with pytest.raises(ValueError, match=r"for pretext 'rotation'; valid: \['contextual'"):
        pretext_config("rotation", {"modes": "line"})
    with pytest.raises(ValueError, match=r"^pretext.masked.ratio='abc': give a number$"):
        pretext_config("masked", {"ratio": "abc"})
    with pytest.raises(ValueError, match=r"^pretrain.pretext.masked.ratio='abc'"):
        pretext_config("masked", {"ratio": "abc"}, "pretrain.pretext.masked.")


def test_the_library_side_loads_neither_hydra_nor_the_commands():
    code = ("import sys, htr_ssl.config, htr_ssl.pretext.registry; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf')"
            " or m.startswith('htr_ssl.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
