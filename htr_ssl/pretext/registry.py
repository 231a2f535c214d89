"""Pretexts by name: `PRETEXTS[name] = (ConfigDataclass, PretextClass)`.

A new method is a module in this package with a config dataclass and a `Pretext` subclass,
one line here, and a `configs/pretext/<name>.yaml` (listed in configs/pretext/_all.yaml).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from htr_ssl.config import from_dict
from htr_ssl.models.encoders import Encoder
from htr_ssl.pretext.base import Pretext
from htr_ssl.pretext.bootstrap import BYOL, BYOLConfig, SimSiam, SimSiamConfig
from htr_ssl.pretext.chaco import ChaCo, ChaCoConfig
from htr_ssl.pretext.cmtco import CMTCo, CMTCoConfig
from htr_ssl.pretext.context import Context, ContextConfig
from htr_ssl.pretext.cpc import CPC, CPCConfig
from htr_ssl.pretext.decorrelation import Barlow, BarlowConfig, VICReg, VICRegConfig
from htr_ssl.pretext.dino import DINO, DINOConfig
from htr_ssl.pretext.geometric import Flip, FlipConfig, Rotation, RotationConfig
from htr_ssl.pretext.inpaint import Inpaint, InpaintConfig
from htr_ssl.pretext.masked import Masked, MaskedConfig
from htr_ssl.pretext.moco import MoCo, MoCoConfig
from htr_ssl.pretext.persec import PerSec, PerSecConfig
from htr_ssl.pretext.puzzle import Jigsaw, JigsawConfig, Sorting, SortingConfig
from htr_ssl.pretext.seqclr import SeqCLR, SeqCLRConfig
from htr_ssl.pretext.simclr import SimCLR, SimCLRConfig
from htr_ssl.pretext.swav import SwAV, SwAVConfig

PRETEXTS: dict[str, tuple[type, type[Pretext]]] = {
    "rotation": (RotationConfig, Rotation),
    "flip": (FlipConfig, Flip),
    "seqclr": (SeqCLRConfig, SeqCLR),
    "simclr": (SimCLRConfig, SimCLR),
    "vicreg": (VICRegConfig, VICReg),
    "barlow": (BarlowConfig, Barlow),
    "jigsaw": (JigsawConfig, Jigsaw),
    "sorting": (SortingConfig, Sorting),
    "byol": (BYOLConfig, BYOL),
    "simsiam": (SimSiamConfig, SimSiam),
    "chaco": (ChaCoConfig, ChaCo),
    "cmtco": (CMTCoConfig, CMTCo),
    "masked": (MaskedConfig, Masked),
    "moco": (MoCoConfig, MoCo),
    "cpc": (CPCConfig, CPC),
    "inpaint": (InpaintConfig, Inpaint),
    "context": (ContextConfig, Context),
    "dino": (DINOConfig, DINO),
    "swav": (SwAVConfig, SwAV),
    "persec": (PerSecConfig, PerSec),
}


def classes(name: str) -> tuple[type, type[Pretext]]:
    """(config dataclass, Pretext class) of pretext `name`; an unknown name is an error that
    lists the valid ones."""
    if name not in PRETEXTS:
        raise ValueError(f"unknown pretext {name!r}; available: {', '.join(sorted(PRETEXTS))}")
    return PRETEXTS[name]


def pretext_config(name: str, values: Mapping[str, Any] | None = None,
                   prefix: str | None = None) -> Any:
    """The config dataclass of pretext `name`; unknown names and options, and values of the
    wrong kind, are errors that name them (and the valid ones). `prefix`: where the values
    sit in a config, for the messages (default `pretext.<name>.`)."""
    return from_dict(classes(name)[0], dict(values or {}),
                     f"pretext.{name}." if prefix is None else prefix, f"pretext {name!r}")


@functools.cache
def weighted_config(name: str) -> type:
    """Pretext `name`'s config dataclass with `weight` beside its own options (its loss weight
    among the pretexts trained together, 1.0): the shape of `pretext.<name>` in
    configs/pretrain.yaml and of a pretext checkpoint's saved options."""
    cls = classes(name)[0]
    return dataclasses.make_dataclass(
        f"Weighted{cls.__name__}", [("weight", float, dataclasses.field(default=1.0))],
        bases=(cls,), frozen=cls.__dataclass_params__.frozen)


def chosen_pretexts(nodes: Mapping[str, Mapping[str, Any]], prefix: str = "pretext."
                    ) -> tuple[dict[str, Any], dict[str, float]]:
    """The pretexts a config chose, `{name: {weight, **options}}` (`pretext=[rotation,seqclr]`),
    as `PretrainJob` and `build_pretext_model` take them: (config dataclass by name, loss
    weight by name). Each node is one conversion into its weighted config, so unknown options
    and values of the wrong kind (the weight's too) are errors naming `<prefix><name>.<option>`.
    """
    configs, weights = {}, {}
    for name, values in nodes.items():
        entry = from_dict(weighted_config(name), dict(values or {}), f"{prefix}{name}.",
                          f"pretext {name!r}")
        cls = PRETEXTS[name][0]
        weights[name] = float(entry.weight)
        configs[name] = cls(**{f.name: getattr(entry, f.name) for f in dataclasses.fields(cls)})
    return configs, weights


def build_pretext(name: str, cfg: Any, encoder: Encoder) -> Pretext:
    """Instantiate pretext `name` with its heads sized for `encoder`."""
    return classes(name)[1](cfg, encoder)
