"""Optimizer registry: names users type (`--optimizer adamw`) to torch optimizers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lrtune.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class OptimizerInfo:
    """One registry entry: the torch class name, its defaults and a one-line description."""

    name: str
    torch_class: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    family: str = "sgd"  # 'sgd' or 'adam': decides the recommended schedule shape

    def build(self, params: Iterable[Any], lr: float, **overrides: Any) -> Any:
        import torch

        cls: Callable[..., Any] = getattr(torch.optim, self.torch_class)
        kwargs = {**self.defaults, **overrides}
        try:
            return cls(params, lr=lr, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"optimizer '{self.name}': {exc}") from None


OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info
    for info in (
        OptimizerInfo("sgd", "SGD", {"momentum": 0.9}, "SGD with momentum 0.9", "sgd"),
        OptimizerInfo(
            "nesterov", "SGD", {"momentum": 0.9, "nesterov": True}, "SGD, Nesterov 0.9", "sgd"
        ),
        OptimizerInfo("sgd_plain", "SGD", {}, "SGD without momentum", "sgd"),
        OptimizerInfo("adam", "Adam", {}, "Adam (betas 0.9, 0.999)", "adam"),
        OptimizerInfo("adamw", "AdamW", {"weight_decay": 0.01}, "AdamW, weight decay 0.01", "adam"),
        OptimizerInfo("rmsprop", "RMSprop", {}, "RMSprop", "adam"),
        OptimizerInfo("adagrad", "Adagrad", {}, "Adagrad", "adam"),
        OptimizerInfo("radam", "RAdam", {}, "RAdam", "adam"),
        OptimizerInfo("nadam", "NAdam", {}, "NAdam", "adam"),
    )
}


def get_optimizer(name: str) -> OptimizerInfo:
    """Look up an optimizer by name.

    Raises:
        ConfigError: unknown name (lists the valid ones).
    """
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ConfigError(unknown_name("optimizer", name, OPTIMIZERS))
    return OPTIMIZERS[key]


def optimizer_family(optimizer: Any) -> str:
    """'sgd' or 'adam' for a torch optimizer instance (decides schedule defaults)."""
    cls = type(optimizer).__name__.lower()
    return "sgd" if cls in ("sgd", "asgd", "lars", "lamb_sgd") else "adam"


def override_hyperparams(optimizer: Any, params: Mapping[str, Any]) -> None:
    """Set hyper-parameters on every param group of an existing optimizer.

    `momentum` maps to beta1 of Adam-family optimizers. A key the optimizer does not have is
    a ConfigError naming the optimizer and the keys it has.
    """
    for key, value in params.items():
        for group in optimizer.param_groups:
            if key == "momentum" and "momentum" not in group and "betas" in group:
                group["betas"] = (float(value), group["betas"][1])
            elif key in group:
                group[key] = tuple(value) if isinstance(value, list) else value
            else:
                valid = sorted(k for k in group if k != "params")
                raise ConfigError(
                    f"{type(optimizer).__name__} has no hyper-parameter '{key}'; it has: "
                    f"{', '.join(valid)}"
                )
