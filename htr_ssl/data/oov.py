"""Characters outside a model's alphabet: name them, warn about them, or apply the dataset's
`data.oov` policy (error, drop or map) before training."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from htr_ssl.data.alphabet import Alphabet, OutOfAlphabetError
from htr_ssl.data.sample import Sample

log = logging.getLogger(__name__)

OovPolicy = Literal["error", "drop", "map"]


def unknown_chars(samples: Sequence[Sample], alphabet: Alphabet) -> dict[str, list[str]]:
    """Each character outside the alphabet -> ids of the samples that contain it."""
    found: dict[str, list[str]] = {}
    for s in samples:
        for c in sorted(alphabet.missing(s.text)):
            found.setdefault(c, []).append(s.id)
    return found


def report_oov(samples: Sequence[Sample], alphabet: Alphabet, what: str) -> dict[str, int]:
    """Warn about characters a model with this alphabet can never output (they will count as
    errors). Evaluation needs no target ids, so this is a warning, not an error."""
    found = unknown_chars(samples, alphabet)
    if found:
        ranked = sorted(found.items(), key=lambda kv: -len(kv[1]))
        log.warning("%s: %d characters are not in the alphabet and can never be recognized "
                    "(they count as errors): %s", what, len(found), ", ".join(
                        f"{c!r} ({len(ids)} samples, e.g. {ids[0]})" for c, ids in ranked))
    return {c: len(ids) for c, ids in found.items()}


def apply_oov_policy(
    samples: Sequence[Sample],
    alphabet: Alphabet,
    policy: OovPolicy = "error",
    replacement: dict[str, str] | None = None,
) -> list[Sample]:
    """Deal with characters outside the alphabet.

    error: raise, naming every unknown character and (up to 10) sample ids per character.
    drop:  remove the samples that contain one, logging how many.
    map:   replace characters using `replacement` (unmapped ones are deleted), logging counts.
    """
    if policy not in ("error", "drop", "map"):
        raise ValueError(f"unknown oov policy {policy!r}; use error, drop or map")
    bad = unknown_chars(samples, alphabet)
    if not bad:
        return list(samples)
    if policy == "error":
        lines = [f"  {c!r}: {len(ids)} samples, e.g. {', '.join(ids[:10])}"
                 for c, ids in sorted(bad.items())]
        raise OutOfAlphabetError(
            "characters outside the alphabet:\n" + "\n".join(lines)
            + "\nFix: rebuild the alphabet from this data, or set data.oov=drop (skip those "
            "samples) or data.oov=map with data.oov_map={char: replacement}."
        )
    if policy == "drop":
        kept = [s for s in samples if not alphabet.missing(s.text)]
        log.warning("dropped %d samples with characters outside the alphabet: %s",
                    len(samples) - len(kept), "".join(sorted(bad)))
        return kept
    table = replacement or {}
    counts: Counter[str] = Counter()
    out = []
    for s in samples:
        miss = alphabet.missing(s.text)
        if not miss:
            out.append(s)
            continue
        text = "".join(
            (table.get(c, "") if c in miss else c) for c in s.text
        )
        counts.update(c for c in s.text if c in miss)
        text = "".join(c for c in text if c in alphabet)
        if text.strip():
            out.append(replace(s, text=text))
    log.warning("mapped %d out-of-alphabet characters (%s)", sum(counts.values()),
                ", ".join(f"{c!r}x{n}" for c, n in counts.most_common()))
    return out
