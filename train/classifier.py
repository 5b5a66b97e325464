"""Action classifiers for the downstream protocols: an encoder and a head (docs/method.md §7).

A batch ``x: (B, M, T, V, C)`` is encoded person by person (``N = B*M`` sequences, as in
pretraining) into the final-LN output ``z: (B*M, L, D)``, ``L = T' * V`` tokens, time-major.

- :class:`LinearHead` (linear probe): mean of ``z`` over persons and all tokens -> (B, D) ->
  BatchNorm1d(D, affine=False) -> Linear(D, classes), weights trunc-normal(0.01).
- :class:`MlpHead` (fine-tuning, MAMP's ``ActionHeadFinetune``): dropout -> mean over time ->
  joints concatenated (B, M, V*D) -> mean over persons -> Linear(V*D, 2048)-BN-ReLU-Linear.

With ``frozen=True`` (linear probe) the encoder has no gradients, runs without autograd and
stays in eval mode whatever ``train()`` is called with.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from s2v.train.config import HeadConfig, ModelConfig
from s2v.train.model import Encoder


def pool_features(z: Tensor, persons: int) -> Tensor:
    """z: (B*M, L, D) encoder output -> (B, D): the mean over persons and tokens."""
    return z.view(-1, persons * z.shape[1], z.shape[2]).mean(1)


class LinearHead(nn.Module):
    """BatchNorm1d(D, affine=False) + Linear(D, classes) on the pooled features."""

    def __init__(self, dim: int, classes: int, init_std: float = 0.01) -> None:
        super().__init__()
        # eps 1e-6 as MAE's linear probe (MAMP and the reference copy it)
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.fc = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.fc.weight, std=init_std)
        nn.init.zeros_(self.fc.bias)

    def classify(self, f: Tensor) -> Tensor:
        """f: (B, D) pooled features -> logits (B, classes)."""
        return self.fc(self.bn(f))

    def forward(self, z: Tensor, persons: int, joints: int) -> Tensor:
        """z: (B*M, L, D) -> logits (B, classes)."""
        return self.classify(pool_features(z, persons))


class MlpHead(nn.Module):
    """Dropout, mean over time, concatenated joints, mean over persons, Linear-BN-ReLU-Linear."""

    def __init__(
        self,
        dim: int,
        joints: int,
        classes: int,
        hidden: int = 2048,
        dropout: float = 0.3,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(joints * dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, classes)
        for fc in (self.fc1, self.fc2):
            nn.init.trunc_normal_(fc.weight, std=init_std)
            nn.init.zeros_(fc.bias)

    def forward(self, z: Tensor, persons: int, joints: int) -> Tensor:
        """z: (B*M, L, D) -> logits (B, classes)."""
        N, L, D = z.shape
        z = self.dropout(z).view(N // persons, persons, L // joints, joints, D)
        f = z.mean(2).flatten(2)  # mean over time, joints concatenated: (B, M, V*D)
        f = f.mean(1)  # mean over persons: (B, V*D)
        return self.fc2(self.act(self.bn(self.fc1(f))))


class Classifier(nn.Module):
    """encoder + head: x (B, M, T, V, C) -> logits (B, classes)."""

    def __init__(self, encoder: Encoder, head: nn.Module, frozen: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.frozen = frozen
        if frozen:
            encoder.requires_grad_(False)
            encoder.eval()

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.frozen:  # a frozen encoder stays in eval mode (no drop-path)
            self.encoder.eval()
        return self

    def encode(self, x: Tensor) -> Tensor:
        """x: (B, M, T, V, C) -> final-LN output (B*M, L, D)."""
        with torch.no_grad() if self.frozen else torch.enable_grad():
            z, _ = self.encoder(x.flatten(0, 1))
        return z

    def features(self, x: Tensor) -> Tensor:
        """x: (B, M, T, V, C) -> pooled features (B, D) (the linear probe's input)."""
        return pool_features(self.encode(x), x.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, M, T, V, C) -> logits (B, classes)."""
        return self.head(self.encode(x), x.shape[1], self.encoder.joints)


def build_head(cfg: HeadConfig, model: ModelConfig, classes: int) -> nn.Module:
    """The head a config names, for an encoder of ``model``'s width."""
    if cfg.kind == "linear":
        return LinearHead(model.dim, classes, cfg.init_std)
    return MlpHead(model.dim, model.joints, classes, cfg.hidden, cfg.dropout, cfg.init_std)


def build_classifier(
    encoder: Encoder, cfg: HeadConfig, model: ModelConfig, classes: int
) -> Classifier:
    """A classifier around ``encoder``; a linear head freezes the encoder (linear probe)."""
    return Classifier(encoder, build_head(cfg, model, classes), frozen=cfg.kind == "linear")


def classifier_state(model: Classifier, extra: dict[str, Any]) -> dict[str, Any]:
    """A weights_only-safe checkpoint dict: ``kind``, ``model`` state_dict and ``extra``."""
    return {"kind": "classifier", "model": model.state_dict(), **extra}
