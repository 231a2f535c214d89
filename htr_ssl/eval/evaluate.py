"""Run a recognizer over a loader, decode, score, and write metrics.json / predictions.tsv."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from htr_ssl.data.alphabet import Alphabet
from htr_ssl.data.pipeline import init_worker
from htr_ssl.data.sample import Sample, TextImageDataset, collate_readable
from htr_ssl.data.sampler import sorted_windows
from htr_ssl.eval.confidence import Reading, attention_confidences, ctc_reading
from htr_ssl.eval.decoding import CTCBeamDecoder
from htr_ssl.eval.metrics import MetricConfig, compute_metrics, sample_cer
from htr_ssl.inference.runtime import autocast, check_precision
from htr_ssl.models.recognizer import Recognizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeConfig:
    """`head`: ctc | attention | auto (attention when the model has one).
    `method`: greedy | beam. CTC beam search goes through torchaudio's flashlight decoder and
    accepts a `lexicon` (file or word list file) and a KenLM `lm` (ARPA or binary)."""

    head: str = "auto"
    method: str = "greedy"
    beam_size: int = 10
    lexicon: str | None = None
    lm: str | None = None
    lm_weight: float = 0.5
    word_score: float = 0.0


@dataclass(frozen=True)
class Row:
    """One scored line; `confidence` and `word_confidences` (one per hypothesis word) as
    htr_ssl.eval.confidence defines them."""

    id: str
    reference: str
    hypothesis: str
    cer: float
    confidence: float | None = None
    word_confidences: tuple[float, ...] = ()


def resolve_head(model: Recognizer, head: str) -> str:
    """`auto` -> attention when the model has an attention decoder, else ctc."""
    if head == "auto":
        return "attention" if model.attention is not None else "ctc"
    if head not in ("ctc", "attention"):
        raise ValueError(f"decode.head={head!r}; use ctc, attention or auto")
    return head


class Transcriber:
    """Turns batches of images into text with one decoding configuration.

    `precision="bf16"` runs the network under bf16 autocast (2-3x faster on CPUs with bf16
    instructions and on GPUs; the decoders' log-softmax stays fp32). Scores can then differ
    from fp32 in the last decimal, so evaluation defaults to fp32."""

    def __init__(self, model: Recognizer, alphabet: Alphabet, cfg: DecodeConfig,
                 precision: str = "fp32") -> None:
        check_precision(precision)
        if cfg.method not in ("greedy", "beam"):
            raise ValueError(f"decode.method={cfg.method!r}; use greedy or beam")
        head = resolve_head(model, cfg.head)
        if (cfg.lexicon or cfg.lm) and not (head == "ctc" and cfg.method == "beam"):
            raise ValueError("a lexicon or language model needs decode.head=ctc "
                             "decode.method=beam")
        self.model, self.alphabet, self.cfg, self.head = model, alphabet, cfg, head
        self.precision = precision
        self.beam: CTCBeamDecoder | None = None
        if head == "ctc" and cfg.method == "beam":
            lexicon = _read_lexicon(cfg.lexicon) if cfg.lexicon else None
            self.beam = CTCBeamDecoder(alphabet, cfg.beam_size, lexicon, cfg.lm, cfg.lm_weight,
                                       cfg.word_score)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, widths: torch.Tensor) -> list[str]:
        """The text of each image."""
        ids, _ = self._decode(images, widths)
        return [self.alphabet.decode(i) for i in ids]

    @torch.no_grad()
    def read(self, images: torch.Tensor, widths: torch.Tensor) -> list[Reading]:
        """The text of each image with its line, word and character confidences."""
        ids, pred = self._decode(images, widths)
        readings = []
        if self.head == "ctc":
            log_probs = pred.ctc_logits.float().log_softmax(-1).cpu()
            lengths = pred.lengths.cpu().tolist()
        for i, seq in enumerate(ids):
            seq = [t for t in seq if 1 <= t <= len(self.alphabet)]
            text = self.alphabet.decode(seq)
            if self.head == "ctc":
                readings.append(ctc_reading(log_probs[i, : lengths[i]], text, seq))
            else:
                chars, line = attention_confidences(pred.token_probs[i], len(seq))
                readings.append(Reading.from_chars(text, chars, line))
        return readings

    def _decode(self, images: torch.Tensor, widths: torch.Tensor):
        beam = self.cfg.beam_size if self.cfg.method == "beam" else 1
        with autocast(images.device, self.precision):
            pred = self.model.predict(images, widths, mode=self.head, beam=beam)
        ids = self.beam(pred.ctc_logits, pred.lengths) if self.beam is not None else pred.ids
        return ids, pred


def read_in_input_order(transcriber: Transcriber, samples: list[Sample], height: int,
                        batch_size: int = 16, num_workers: int = 0, window: int = 1024,
                        confidences: bool = False) -> Iterator[tuple[str, str | Reading]]:
    """(id, text) for every readable sample, in input order; (id, Reading) with
    `confidences`.

    Batches are formed by width within windows of `window` inputs (text lines vary 5x in
    width, and padding is compute spent on nothing), and each window is handed out as soon as
    it is read, so a long folder streams. Unreadable images are skipped with a warning (a
    batch of only unreadable ones too), then counted."""
    windows = sorted_windows([s.aspect() for s in samples], batch_size, window)
    device = next(transcriber.model.parameters()).device
    loader = DataLoader(TextImageDataset(samples, None, height),
                        batch_sampler=[b for w in windows for b in w],
                        collate_fn=collate_readable,
                        num_workers=num_workers, pin_memory=device.type == "cuda",
                        worker_init_fn=init_worker if num_workers else None)
    batches = iter(loader)
    transcriber.model.eval()
    unreadable = 0
    read = transcriber.read if confidences else transcriber
    for window_batches in windows:
        texts: dict[str, str | Reading] = {}
        for _ in window_batches:
            batch = next(batches)
            unreadable += batch.dropped
            if len(batch):
                hyps = read(batch.images.to(device), batch.widths.to(device))
                texts.update(zip(batch.ids, hyps, strict=True))
        for i in sorted(i for b in window_batches for i in b):
            if samples[i].id in texts:
                yield samples[i].id, texts[samples[i].id]
    if unreadable:
        log.warning("%d of %d images were unreadable and are not transcribed (see the warnings "
                    "naming them)", unreadable, len(samples))


def _read_lexicon(path: str) -> str | list[str]:
    """A flashlight lexicon (`word c h a r s |`) is used as is; a plain word list (one word
    per line) is spelled with the alphabet."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"lexicon {p} does not exist (decode.lexicon)")
    lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if lines and all(len(ln.split()) > 1 for ln in lines[:20]):
        return str(p)
    return [ln.strip() for ln in lines]


def transcribe(model: Recognizer, loader: DataLoader, transcriber: Transcriber,
               device: torch.device, progress: bool = False) -> list[Row]:
    """Predictions for every readable sample of `loader`, in loader order."""
    model.eval()
    rows: list[Row] = []
    unreadable = 0
    for batch in tqdm(loader, disable=not progress, desc="decode", leave=False):
        unreadable += batch.dropped
        if not len(batch):
            continue
        readings = transcriber.read(batch.images.to(device), batch.widths.to(device))
        for sid, ref, hyp in zip(batch.ids, batch.texts, readings, strict=True):
            rows.append(Row(sid, ref, hyp.text, sample_cer(ref, hyp.text), hyp.confidence,
                            tuple(w.confidence for w in hyp.words)))
    if unreadable:
        log.warning("%d unreadable images were not scored (see the warnings naming them)",
                    unreadable)
    return rows


def evaluate(model: Recognizer, loader: DataLoader, alphabet: Alphabet,
             decode: DecodeConfig | None = None, metric: MetricConfig | None = None,
             progress: bool = False, precision: str = "fp32"
             ) -> tuple[dict[str, float], list[Row]]:
    device = next(model.parameters()).device
    transcriber = Transcriber(model, alphabet, decode or DecodeConfig(), precision)
    rows = transcribe(model, loader, transcriber, device, progress)
    metrics = compute_metrics([r.reference for r in rows], [r.hypothesis for r in rows],
                              metric or MetricConfig())
    return metrics, rows


def write_results(run_dir: Path, metrics: dict, rows: list[Row], name: str = "") -> None:
    """metrics{name}.json and predictions{name}.tsv (id, reference, hypothesis, cer,
    confidence, word_confidences: one per hypothesis word, space-separated)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"metrics{name}.json").write_text(json.dumps(metrics, indent=2) + "\n")
    with (run_dir / f"predictions{name}.tsv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(["id", "reference", "hypothesis", "cer", "confidence", "word_confidences"])
        for r in rows:
            conf = "" if r.confidence is None else f"{r.confidence:.4f}"
            w.writerow([r.id, r.reference, r.hypothesis, f"{r.cer:.2f}", conf,
                        " ".join(f"{c:.4f}" for c in r.word_confidences)])
