"""Dataset statistics from samples, so every reader gets the same summary table."""

from __future__ import annotations

from collections.abc import Sequence

from htr_ssl.data.sample import Sample

COLUMNS = ("samples", "writers", "words", "chars", "symbols", "mean_chars", "mean_width")


def sample_stats(samples: Sequence[Sample], widths: bool = True) -> dict:
    """Counts per split and in total. `mean_width` (pixels, as stored) reads image headers."""

    def summary(group: Sequence[Sample]) -> dict:
        chars = sum(len(s.text) for s in group)
        sizes = [s.size() for s in group] if widths else []
        ws = [size[0] for size in sizes if size is not None]
        return {
            "samples": len(group),
            "writers": len({s.writer for s in group if s.writer}),
            "words": sum(len(s.text.split()) for s in group),
            "chars": chars,
            "symbols": len({c for s in group for c in s.text}),
            "mean_chars": round(chars / len(group), 1) if group else 0.0,
            "mean_width": round(sum(ws) / len(ws), 1) if ws else 0.0,
        }

    splits: dict[str, list[Sample]] = {}
    for s in samples:
        splits.setdefault(s.split or "none", []).append(s)
    order = [k for k in ("train", "val", "test", "none") if k in splits]
    return {**summary(samples), "splits": {k: summary(splits[k]) for k in order}}


def format_table(stats: dict) -> str:
    """One row per split plus the total."""
    rows = [*stats["splits"].items(), ("total", stats)]
    head = f"{'split':<7}" + "".join(f"{c:>12}" for c in COLUMNS)
    body = [f"{name:<7}" + "".join(f"{s[c]:>12}" for c in COLUMNS) for name, s in rows]
    return "\n".join([head, "-" * len(head), *body])
