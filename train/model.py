"""The Skeleton2vec network: a transformer encoder over joint tokens and a light decoder.

Tokens (docs/method.md §2-§3): a clip of one person ``x: (N, T, V, C)`` (N = B*M, each person
is its own sequence) is cut into T/s segments of s frames; ``Conv2d(C -> D, kernel (s, 1))``
embeds each (segment, joint) into one token, flattened time-major: token ``l = t * V + v``,
``L = (T/s) * V`` (30 x 25 = 750). The encoder sees only the visible tokens (MAE); the decoder
scatters them back to their own (t, v) slots, fills the rest with a mask token and predicts
a target for every slot.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2v.train.config import ModelConfig


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability p (train only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT); small init: blocks start ~identity."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, L, D) -> (N, L, D)."""
        N, L, D = x.shape
        qkv = self.qkv(x).view(N, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (N, H, L, D/H)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(N, L, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block with LayerScale and drop-path."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        layer_scale: float = 1e-4,
        drop_path: float = 0.0,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qkv_bias)
        # layer_scale 0: no LayerScale (MAMP's blocks)
        self.ls1 = LayerScale(dim, layer_scale) if layer_scale > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layer_scale) if layer_scale > 0 else nn.Identity()
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, L, D) -> (N, L, D), the residual stream after this block."""
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class PosEmbed(nn.Module):
    """Learned spatial (1, V, D) + temporal (1, T', D) position embedding, summed per token."""

    def __init__(self, tokens_t: int, joints: int, dim: int) -> None:
        super().__init__()
        # trunc-normal(0.02) both: the reference initialises its spatial embedding twice (a
        # typo) and leaves the temporal one at zero
        self.spatial = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, joints, dim), std=0.02))
        self.temporal = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, tokens_t, dim), std=0.02))

    def forward(self) -> Tensor:
        """-> (1, T' * V, D), time-major like the tokens."""
        pos = self.temporal[:, :, None, :] + self.spatial[:, None, :, :]  # (1, T', V, D)
        return pos.flatten(1, 2)


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """x: (N, L, D), idx: (N, K) token indices -> (N, K, D)."""
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))


class Encoder(nn.Module):
    """Joint embedding + position embedding + pre-LN blocks + final LayerNorm."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.tokens_t = cfg.frames // cfg.segment
        self.joints = cfg.joints
        self.dim = cfg.dim
        self.embed = nn.Conv2d(
            cfg.channels, cfg.dim, kernel_size=(cfg.segment, 1), stride=(cfg.segment, 1)
        )
        self.pos = PosEmbed(self.tokens_t, cfg.joints, cfg.dim)
        dpr = torch.linspace(0, cfg.drop_path, cfg.depth).tolist()  # stochastic depth rule
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.layer_scale, dpr[i], cfg.qkv_bias)
            for i in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.apply(init_weights)

    @property
    def num_tokens(self) -> int:
        return self.tokens_t * self.joints

    def tokens(self, x: Tensor) -> Tensor:
        """x: (N, T, V, C) -> tokens with position embedding (N, L, D), L = T/s * V."""
        x = self.embed(x.permute(0, 3, 1, 2))  # (N, D, T/s, V)
        x = x.flatten(2).transpose(1, 2)  # (N, T/s * V, D), time-major
        return x + self.pos()

    def forward(
        self, x: Tensor, keep: Tensor | None = None, return_layers: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        """x: (N, T, V, C), keep: (N, K) sorted visible token indices (None: all L tokens).

        Returns (final-LN output (N, K, D), per-block residual outputs [(N, K, D)] * depth,
        before the final LN; empty unless ``return_layers``).
        """
        x = self.tokens(x)
        if keep is not None:
            x = gather_tokens(x, keep)
        layers = []
        for blk in self.blocks:
            x = blk(x)
            if return_layers:
                layers.append(x)
        return self.norm(x), layers


class Decoder(nn.Module):
    """Puts encoded visible tokens back in their slots, mask tokens elsewhere; predicts targets."""

    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        self.tokens_t = cfg.frames // cfg.segment
        self.joints = cfg.joints
        self.embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        self.pos = PosEmbed(self.tokens_t, cfg.joints, cfg.decoder_dim)
        self.blocks = nn.ModuleList(
            Block(
                cfg.decoder_dim,
                cfg.decoder_heads,
                cfg.mlp_ratio,
                cfg.layer_scale,
                0.0,
                cfg.qkv_bias,
            )
            for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(cfg.decoder_dim, eps=1e-6)
        self.head = nn.Linear(cfg.decoder_dim, out_dim)
        self.apply(init_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def fill(self, z: Tensor, keep: Tensor) -> Tensor:
        """z: (N, K, D) encoded visible tokens, keep: (N, K) their indices -> (N, L, Dd):
        the embedded visible tokens in their own slots, the mask token everywhere else."""
        z = self.embed(z)  # (N, K, Dd)
        N, K, Dd = z.shape
        L = self.tokens_t * self.joints
        # scatter by index: every visible token goes back to its own (t, v) slot (the reference
        # tube branch concatenates [visible, mask] along the flat sequence and reshapes,
        # which puts visible tokens in the first K slots)
        x = self.mask_token.to(z.dtype).expand(N, L, Dd)
        return x.scatter(1, keep[..., None].expand(-1, -1, Dd), z)

    def forward(self, z: Tensor, keep: Tensor) -> Tensor:
        """z: (N, K, D) encoded visible tokens, keep: (N, K) their token indices -> (N, L, out)."""
        x = self.fill(z, keep) + self.pos()
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


class Skeleton2vec(nn.Module):
    """The student: encoder on visible tokens + decoder over all slots."""

    def __init__(self, cfg: ModelConfig, out_dim: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg, out_dim if out_dim is not None else cfg.dim)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """x: (N, T, V, C), keep: (N, K) visible token indices -> predictions (N, L, out)."""
        z, _ = self.encoder(x, keep)
        return self.decoder(z, keep)


def init_weights(m: nn.Module) -> None:
    """trunc-normal(0.02) for Linear and Conv, zero bias; LayerNorm (1, 0)."""
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def build_model(cfg: ModelConfig, target: str = "features") -> Skeleton2vec:
    """The student for a target kind: head 256 -> 256 (features) or 256 -> s*C (motion)."""
    out_dim = cfg.dim if target == "features" else cfg.segment * cfg.channels
    return Skeleton2vec(cfg, out_dim)


def build_encoder(cfg: ModelConfig) -> Encoder:
    """A freshly initialised encoder alone (downstream tasks load weights into it)."""
    return Encoder(cfg)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
