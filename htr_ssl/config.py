"""Plain data -> the library's config dataclasses, with errors that name the option: the one
check every config goes through, whether the console commands' Hydra configs
(`htr_ssl.cli._config.to_dataclass`), a pretext's options (`htr_ssl.pretext.registry`) or a
checkpoint's saved config."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
         type(None): "null"}


def from_dict(cls: type[T], values: Mapping[str, Any], prefix: str = "",
              what: str | None = None) -> T:
    """Build `cls` from plain `values`, recursing into dataclass-typed fields.

    Unknown keys are an error naming the key and the valid ones, so a typo in an override
    (`trainer.lr_rate=...`) fails loudly instead of being ignored; so is a value of the wrong
    kind (`data.labels=abc`, `trainer.lr=null`), before any data is read. `prefix` is where
    the values sit in a config (`data.`), for the messages; `what` names `cls` in them
    (default: its class name).
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {what or cls.__name__}; "
                         f"valid: {sorted(names)}")
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            value = check_kind(f"{prefix}{key}", value, hint)
        kwargs[key] = value
    return cls(**kwargs)


def check_kind(option: str, value: Any, hint: Any) -> Any:
    """`value`, or a ValueError naming `option` when a scalar option holds a value of another
    kind; hints that are not plain scalars (lists, dicts, Any) are not checked. A number given
    for a text option (`data.root=2024`) is that text."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) \
        or typing.get_origin(hint) is typing.Union else (hint,)
    if not all(k in KINDS for k in kinds):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and str in kinds and int not in kinds and float not in kinds:
        return str(value)
    ok = ((value is None and type(None) in kinds)
          or (isinstance(value, bool) and bool in kinds)
          or (number and float in kinds)
          or (number and isinstance(value, int) and int in kinds)
          or (isinstance(value, str) and str in kinds))
    if not ok:
        shown = "null" if value is None else repr(value)
        raise ValueError(f"{option}={shown}: give {' or '.join(KINDS[k] for k in kinds)}")
    return value
