"""params.yaml validated into one typed, frozen config.

Defaults live in params.yaml alone: every key must be there, an unknown key, a wrong type or
a value outside the allowed set fails with one line naming the key and what is allowed,
before any stage starts work.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from dcgan.data.sources import parse_dataset
from dcgan.errors import UserError

# Kept here (not imported from dcgan.losses/models) so validating params needs no torch, and the
# data stages do not depend on the loss code. Loss-specific defaults live in dcgan.losses;
# tests/test_config.py keeps these lists in step with it.
LOSS_NAMES = ("bce", "mse", "hinge", "wgan-gp")
PENALTY_LOSSES = ("wgan-gp",)  # their gradient penalty needs real and fake in one D update
ACTIVATIONS = ("relu", "leaky_relu")
D_NORMS = ("batch", "layer", "none", "spectral")
G_UPSAMPLES = ("transpose", "resize")
# The DCGAN paper's recipe (Radford et al. 2016, as pytorch/examples trains it), where
# params.yaml's tuned defaults have moved on: what the write-ups ran and what the pinned,
# distributed and speed checks train, so tuning the defaults never changes them.
PAPER = {"model.extra_layers": 0, "model.g_upsample": "transpose", "model.ndf": 64,
         "train.lr_g": 0.0002, "train.lr_d": 0.0002, "train.beta1": 0.5, "train.beta2": 0.999,
         "train.d_steps": 1, "train.r1": 0.0, "train.ema": "none"}


class ConfigError(UserError):
    """A params value that does not validate."""


def check_device(value: str) -> None:
    """Accept auto, cpu, cuda or cuda:N."""
    head, _, index = value.partition(":")
    if value in ("auto", "cpu", "cuda") or (head == "cuda" and index.isdigit()):
        return
    raise ValueError(f"unknown value {value!r}; allowed: auto, cpu, cuda, cuda:N")


def check_decay(value: float) -> None:
    """An average's decay: strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"must be between 0 and 1 (exclusive), e.g. 0.999; got {value!r}")


# The DCGAN's resolution schedule (dcgan.models.supported_sizes), kept here without torch;
# tests/test_config.py checks that both accept the same sizes.
IMAGE_SIZES = "28 or a power of two from 16 to 256"


def check_image_size(value: int) -> None:
    """Accept the image sizes the DCGAN can build, before any stage preprocesses a thing."""
    if value == 28 or (16 <= value <= 256 and value & (value - 1) == 0):
        return
    raise ValueError(f"unsupported value {value!r}; the DCGAN supports {IMAGE_SIZES} "
                     "(auto: 28 for IDX sources, 64 for image folders)")


def _rule(*, choices: tuple = (), minimum: float | None = None,
          check: Callable[[Any], Any] | None = None, unset: str | None = None) -> Any:
    """A dataclass field (no default: defaults live in params.yaml) with validation rules.

    ``unset`` is the word (``auto``, ``none``, ``all``, ``eager``) that params.yaml writes for
    "not set: use the rule in the comment"; the typed config holds None for it. A bare YAML
    null is refused instead, since ``dvc exp run -S`` rewrites every null in the file as an
    empty value.
    """
    return field(metadata={"choices": choices, "minimum": minimum, "check": check,
                           "unset": unset})


@dataclass(frozen=True)
class DownloadParams:
    """``download:`` stage params."""

    # Directory or URL base holding the upstream files, for air-gapped machines
    # (the environment variable DCGAN_MIRROR is used when this is null).
    mirror: Optional[str] = _rule(unset="none")


@dataclass(frozen=True)
class PreprocessParams:
    """``preprocess:`` stage params."""

    image_size: Optional[int] = _rule(check=check_image_size, unset="auto")  # 28 IDX, 64 folders
    channels: Optional[int] = _rule(choices=(1, 3), unset="auto")  # 1 for IDX, 3 for folders
    max_images: Optional[int] = _rule(minimum=1, unset="all")  # else a seeded subset of train


@dataclass(frozen=True)
class ModelParams:
    """``model:`` the DCGAN architecture (image size and channels come from the data)."""

    nz: int = _rule(minimum=1)  # latent size
    ngf: int = _rule(minimum=1)  # G width: its last hidden layer; doubles per block upward
    ndf: int = _rule(minimum=1)  # D width: its first layer; doubles per block downward
    g_activation: str = _rule(choices=ACTIVATIONS)
    d_activation: str = _rule(choices=ACTIVATIONS)
    d_norm: str = _rule(choices=("auto", *D_NORMS))  # auto: the loss's own choice
    extra_layers: int = _rule(minimum=0)  # extra 3x3 conv blocks at the last resolution
    g_upsample: str = _rule(choices=G_UPSAMPLES)  # how G doubles its resolution


@dataclass(frozen=True)
class TrainParams:
    """``train:`` the training loop."""

    epochs: int = _rule(minimum=1)
    batch_size: int = _rule(minimum=1)
    lr_g: float = _rule(minimum=0.0)
    lr_d: float = _rule(minimum=0.0)
    beta1: float = _rule(minimum=0.0)
    beta2: float = _rule(minimum=0.0)
    d_steps: Optional[int] = _rule(minimum=1, unset="auto")  # D steps per G step; auto: the loss's
    gp_weight: float = _rule(minimum=0.0)  # WGAN-GP's lambda
    r1: Optional[float] = _rule(minimum=0.0, unset="auto")  # R1 penalty's gamma; auto: the loss's
    r1_every: int = _rule(minimum=1)  # D steps between R1 penalties (lazy regularisation)
    d_batches: str = _rule(choices=("joint", "separate"))  # separate: fake then real D updates
    device: str = _rule(check=check_device)  # auto | cpu | cuda | cuda:N
    precision: str = _rule(choices=("bf16", "fp32"))  # bf16 autocast applies on CUDA only
    grid_images: int = _rule(minimum=1)  # fixed-noise samples in each epoch's grid
    # epochs between classifier-space FD checks; 0: off; auto: about every 200 G steps
    eval_every: Optional[int] = _rule(minimum=0, unset="auto")
    eval_samples: int = _rule(minimum=2)  # samples per check (best checkpoint by lowest FD)
    nproc: int = _rule(minimum=1)  # training processes on this machine (torchrun + DDP when > 1)
    sync_bn: bool = _rule()  # batch-norm statistics over all processes' samples (CUDA only)
    channels_last: bool = _rule()  # NHWC memory layout for G, D and the batches
    # torch.compile mode, or eager (not "off": YAML 1.1 reads an unquoted off as false)
    compile: Optional[str] = _rule(choices=("default", "reduce-overhead"), unset="eager")
    ema: Optional[float] = _rule(check=check_decay, unset="none")  # decay of G's weight average
    ema_start: int = _rule(minimum=0)  # G steps before the average starts (it copies G until then)
    # DiffAugment of D's inputs (dcgan.augment): null | translation | cutout | translation,cutout
    augment: Optional[str] = _rule(choices=("translation", "cutout", "translation,cutout"),
                                   unset="none")
    sample_bn: str = _rule(choices=("standing", "running"))  # G's batch-norm statistics when sampling


@dataclass(frozen=True)
class ClassifierParams:
    """``classifier:`` the domain classifier used by evaluation."""

    width: int = _rule(minimum=1)  # channels of its first conv (features: 4 x width)
    epochs: int = _rule(minimum=1)
    min_steps: int = _rule(minimum=0)  # more epochs on small data sets, for confident outputs
    batch_size: int = _rule(minimum=1)
    lr: float = _rule(minimum=0.0)


@dataclass(frozen=True)
class EvaluateParams:
    """``evaluate:`` how generators (and the real-data floor) are scored."""

    num_samples: int = _rule(minimum=2)  # generated samples, capped at the reference set's size
    batch_size: int = _rule(minimum=1)
    is_splits: int = _rule(minimum=1)
    kid_subset_size: int = _rule(minimum=2)
    pr_k: int = _rule(minimum=1)  # k of the k-NN manifolds for precision/recall
    # InceptionV3 IS/FID/KID through torch-fidelity; auto: when its weights are at hand
    inception: Optional[bool] = _rule(unset="auto")
    inception_weights: Optional[str] = _rule(unset="auto")  # auto: torch-fidelity's cache


@dataclass(frozen=True)
class Params:
    """All of params.yaml."""

    dataset: str = _rule(check=parse_dataset)
    loss: str = _rule(choices=LOSS_NAMES)
    seed: int = _rule(minimum=0)
    download: DownloadParams = _rule()
    preprocess: PreprocessParams = _rule()
    model: ModelParams = _rule()
    train: TrainParams = _rule()
    classifier: ClassifierParams = _rule()
    evaluate: EvaluateParams = _rule()


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _coerce(tp: Any, value: Any, key: str, unset: str | None = None) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float, the
    ``unset`` word as None)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            raise ConfigError(f"{key}: null is not a value here; write {unset} (what null meant)")
        if value == unset:
            return None
        (tp,) = [a for a in args if a is not type(None)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    ok = isinstance(value, tp) and not (tp is not bool and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(f"{key}: expected {_TYPE_WORDS[tp]}"
                          + (f" or {unset}" if unset else "") + f", got {value!r}")
    return value


def _check_rules(meta: typing.Mapping[str, Any], value: Any, key: str) -> None:
    if value is None:
        return
    if meta.get("choices") and value not in meta["choices"]:
        allowed = ", ".join(str(c) for c in meta["choices"])
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {allowed}")
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise ConfigError(f"{key}: must be >= {meta['minimum']}, got {value!r}")
    if meta.get("check"):
        try:
            meta["check"](value)
        except ValueError as err:
            raise ConfigError(f"{key}: {err}") from None


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix or "params"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{key}: unknown key; "
                              f"allowed in {where}: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            raise ConfigError(f"{key}: missing; add it to params.yaml")
        values[name] = _coerce(hints[name], data[name], key, f.metadata.get("unset"))
        _check_rules(f.metadata, values[name], key)
    return cls(**values)


def _check_together(params: Params) -> None:
    """Rules across keys, so that a stage never starts on a combination that cannot run."""
    if params.train.d_batches == "separate" and params.loss in PENALTY_LOSSES:
        raise ConfigError(f"train.d_batches: 'separate' cannot be used with loss {params.loss} "
                          "(its gradient penalty needs real and fake together); use 'joint'")


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", ...]`` (values in YAML) -> ``{"train.epochs": 3}`` for load_params."""
    pairs = [item.split("=", 1) for item in items]
    bad = [item for item, pair in zip(items, pairs) if len(pair) != 2]
    if bad:
        raise ConfigError(f"override {bad[0]!r}: expected KEY=VALUE, e.g. train.epochs=3")
    return {key: yaml.safe_load(value) for key, value in pairs}


def load_params(path: str | Path = "params.yaml",
                overrides: dict[str, Any] | None = None) -> Params:
    """Read, override (dotted keys, e.g. ``{"train.epochs": 1}``) and validate params."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the repo root or pass --params") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}; fix the syntax") from None
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    try:
        params = _build(Params, data, "")
        _check_together(params)
    except ConfigError as err:
        raise ConfigError(f"{path.name}: {err}") from None
    return params


def flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a params dataclass to ``{"section.key": value}`` as params.yaml writes them
    (``auto`` and the other unset words, not None), for trackers and reports."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, key + "."))
        else:
            out[key] = f.metadata["unset"] if value is None and f.metadata.get("unset") else value
    return out

