"""htr-ssl-predict: read line images, or the lines of PAGE / ALTO pages, with a recognizer
(checkpoint or export); records or page copies out (configs/predict.yaml)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from htr_ssl.cli._config import command, to_dataclass
from htr_ssl.eval.evaluate import DecodeConfig, Transcriber
from htr_ssl.inference.inputs import collect, input_list
from htr_ssl.inference.model_file import load_recognizer
from htr_ssl.inference.outputs import check_format
from htr_ssl.inference.predict import PredictOptions, plan, predict
from htr_ssl.inference.runtime import resolve_device

log = logging.getLogger(__name__)


def inputs_of(cfg: DictConfig) -> list[str]:
    return input_list(cfg.inputs, cfg.inputs_file, "inputs=[a.png,pages/] or "
                      "inputs_file=FILE (one image, page file or folder per line)")


@command("predict", "htr-ssl-predict")
def main(cfg: DictConfig) -> None:
    for key in ("batch_size", "sort_window"):
        if int(cfg[key]) < 1:
            raise ValueError(f"{key}={cfg[key]}; use 1 or more")
    opts = to_dataclass(PredictOptions, {k: cfg[k] for k in (
        "format", "out", "overwrite", "link_images", "batch_size", "num_workers",
        "sort_window")})
    check_format(opts.format, opts.out)
    inputs = collect(inputs_of(cfg))
    where = plan(inputs, opts)  # before the model is read: a bad out= costs nothing
    for problem in inputs.problems:
        log.warning("%s", problem)
    model, alphabet, _ = load_recognizer(cfg.checkpoint)
    model.to(resolve_device(cfg.device))
    transcriber = Transcriber(model, alphabet, to_dataclass(DecodeConfig, cfg.decode),
                              cfg.precision)
    done = predict(transcriber, model.cfg.encoder.height, inputs, opts, where)
    if opts.out:
        pages = f", {done['pages']} page files" if where.pages is not None else ""
        skipped = f"; {len(inputs.problems)} pages or lines skipped (see the warnings)" \
            if inputs.problems else ""
        print(f"written: {opts.out} ({done['lines']} lines{pages}){skipped}")


if __name__ == "__main__":
    main()
