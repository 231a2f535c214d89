"""htr-ssl-train: supervised training, fine-tuning and decoder evaluation (configs/train.yaml)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from htr_ssl.cli._config import (
    command,
    hydra_record,
    resolved,
    resume_and_run_dir,
    to_dataclass,
)
from htr_ssl.data.pipeline import DataConfig
from htr_ssl.eval.metrics import MetricConfig
from htr_ssl.models.encoders import EncoderConfig
from htr_ssl.models.recognizer import DecoderConfig, RecognizerConfig
from htr_ssl.train.finetune import FinetuneConfig, TrainJob, TrainSummary, train_recognizer
from htr_ssl.train.trainer_config import TrainerConfig


def recognizer_config(cfg: DictConfig) -> RecognizerConfig:
    """The `model:` (encoder) and `decoder:` groups, which have RecognizerConfig's shape."""
    return RecognizerConfig(encoder=to_dataclass(EncoderConfig, cfg.model),
                            decoder=to_dataclass(DecoderConfig, cfg.decoder))


def dataset_name(cfg: DictConfig) -> str:
    """The `data=` choice (e.g. "synthetic", "iam_words"): what reports call the dataset."""
    if cfg.get("dataset"):
        return str(cfg.dataset)
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get("data", cfg.data.name))
    return str(cfg.data.name)


def job_from_config(cfg: DictConfig) -> TrainJob:
    resume, run_dir = resume_and_run_dir(cfg)
    return TrainJob(
        data=to_dataclass(DataConfig, cfg.data),
        model=recognizer_config(cfg),
        trainer=to_dataclass(TrainerConfig, cfg.trainer),
        run_dir=run_dir,
        finetune=to_dataclass(FinetuneConfig, cfg.finetune),
        metric=to_dataclass(MetricConfig, cfg.metric),
        resume=resume,
        config=resolved(cfg),
        dataset=dataset_name(cfg),
        fork=bool(cfg.get("fork", False)),
    )


def print_summary(summary: TrainSummary, run_dir: Path) -> None:
    if not summary.main:  # other torchrun ranks stay quiet
        return
    test = summary.test
    if summary.finished:
        print(f"\nrun: {run_dir} had already finished: skipped (resume=auto)")
    print(f"\nrun: {run_dir}  (steps: {summary.step})")
    if test:
        print(f"test ({test['n']} samples): CER {test['cer']:.2f}  WER {test['wer']:.2f}  "
              f"WAcc {test['wacc']:.2f}  WAcc(caseless) {test['wacc_caseless']:.2f}  "
              f"line acc {test['line_acc']:.2f}")
        print(f"metrics: {run_dir / 'metrics.json'}  predictions: {run_dir / 'predictions.tsv'}")


@command("train", "htr-ssl-train")
def main(cfg: DictConfig) -> None:
    job = job_from_config(cfg)
    summary = train_recognizer(job, hydra_record(cfg))
    print_summary(summary, job.run_dir)


if __name__ == "__main__":
    main()
