"""The network: token layout, sizes, init, attention, and the decoder's slot restoration."""

import math

import pytest
import torch
import torch.nn.functional as F

from s2v.train.config import MODEL_SIZES, ModelConfig
from s2v.train.model import (
    Attention,
    DropPath,
    LayerScale,
    build_encoder,
    build_model,
    count_params,
)

TINY = ModelConfig(frames=12, segment=3, **MODEL_SIZES["tiny"])  # 4 x 25 = 100 tokens


def test_full_size_encoder_has_about_6_3_million_parameters():
    model = build_model(ModelConfig())
    n = count_params(model.encoder)
    assert 6.0e6 < n < 6.6e6
    assert model.encoder.num_tokens == 750


def test_tokens_are_time_major_segments_of_s_frames():
    enc = build_encoder(TINY).eval()
    x = torch.randn(2, 12, 25, 3)
    base = enc.tokens(x)
    y = x.clone()
    y[1, 7, 4] += 1.0  # frame 7 -> temporal token 7 // 3 = 2, joint 4 -> token 2 * 25 + 4
    changed = (enc.tokens(y) - base).abs().sum(-1) > 0  # (N, L)
    assert changed[0].sum() == 0
    assert changed[1].nonzero().flatten().tolist() == [2 * 25 + 4]


def test_both_position_embeddings_are_initialised():
    # the reference initialises the spatial embedding twice and leaves the temporal one at zero
    model = build_model(ModelConfig())
    for pos in (model.encoder.pos, model.decoder.pos):
        assert pos.temporal.shape == (1, 30, 256) and pos.spatial.shape == (1, 25, 256)
        assert 0.015 < pos.temporal.std() < 0.025
        assert 0.015 < pos.spatial.std() < 0.025


def test_init_trunc_normal_linear_and_conv_layernorm_one_zero_layerscale():
    model = build_model(ModelConfig())
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            assert m.bias is None or torch.all(m.bias == 0)
        if isinstance(m, torch.nn.LayerNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
            assert m.eps == 1e-6
        if isinstance(m, LayerScale):
            assert torch.allclose(m.gamma, torch.full_like(m.gamma, 1e-4))
    # trunc_normal_(std=0.02) with the default cut at +-2 (absolute), as timm / the reference
    for w in (model.encoder.blocks[0].mlp.fc1.weight, model.decoder.head.weight):
        assert abs(w.std().item() - 0.02) < 0.002


def test_encoder_returns_final_ln_output_and_every_block_output():
    enc = build_encoder(TINY)
    x = torch.randn(3, 12, 25, 3)
    keep = torch.tensor([[0, 5, 99]] * 3)
    out, layers = enc(x, keep, return_layers=True)
    assert out.shape == (3, 3, 32)
    assert len(layers) == TINY.depth and all(h.shape == (3, 3, 32) for h in layers)
    # the final LayerNorm is applied to the last block's residual output, not inside it
    assert torch.allclose(out, enc.norm(layers[-1]))
    _, none = enc(x, keep)
    assert none == []


def test_visible_tokens_do_not_see_masked_frames():
    enc = build_encoder(TINY).eval()
    x = torch.randn(1, 12, 25, 3)
    keep = torch.tensor([[3, 30, 77]])  # tokens (0,3), (1,5), (3,2)
    y = x.clone()
    y[0, 0, 4] = 10.0  # token (0, 4): masked
    y[0, 9:, 20] = -5.0  # token (3, 20): masked
    a, _ = enc(x, keep)
    b, _ = enc(y, keep)
    assert torch.allclose(a, b)


def test_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(2, 7, 32)
    q, k, v = attn.qkv(x).view(2, 7, 3, 4, 8).permute(2, 0, 3, 1, 4)
    w = F.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 7, 32))
    assert torch.allclose(attn(x), ref, atol=1e-5)


def test_decoder_puts_each_visible_token_in_its_own_slot():
    model = build_model(TINY)
    dec = model.decoder
    with torch.no_grad():
        dec.embed.weight.copy_(torch.eye(32))
        dec.embed.bias.zero_()
    L = 100
    keep = torch.tensor([[2, 26, 51, 99], [0, 1, 60, 75]])
    z = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1).expand(2, 4, 32) + 1.0
    filled = dec.fill(z, keep)  # (2, L, 32)
    assert filled.shape == (2, L, 32)
    for n in range(2):
        for j, slot in enumerate(keep[n].tolist()):
            assert torch.equal(filled[n, slot], z[n, j])
        others = torch.ones(L, dtype=torch.bool)
        others[keep[n]] = False
        assert torch.equal(filled[n, others], dec.mask_token[0].expand(int(others.sum()), 32))
    # the reference's tube branch: concat [visible, mask tokens] then reshape to (T', V) without
    # restoring the order -> visible tokens land in slots 0..K-1, here wrong for both rows
    ref = torch.cat([z, dec.mask_token.expand(2, L - 4, 32)], 1)
    assert not torch.equal(ref, filled)
    assert torch.equal(ref[0, 0], z[0, 0]) and not torch.equal(filled[0, 0], z[0, 0])


def test_student_predicts_every_slot_with_the_target_head():
    x = torch.randn(4, 12, 25, 3)
    keep = torch.tensor([[1, 2, 3]] * 4)
    assert build_model(TINY)(x, keep).shape == (4, 100, 32)
    # MAMP target: s * 3 motion values per token
    assert build_model(TINY, target="motion")(x, keep).shape == (4, 100, 9)


def test_gradients_reach_encoder_decoder_mask_token_and_position_embeddings():
    model = build_model(TINY)
    x = torch.randn(2, 12, 25, 3)
    keep = torch.tensor([[0, 50], [10, 90]])
    model(x, keep).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_drop_path_is_identity_in_eval_and_scales_in_train():
    dp = DropPath(0.5)
    x = torch.ones(1000, 4, 8)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    kept = (y[:, 0, 0] != 0).float().mean()
    assert 0.4 < kept < 0.6
    assert torch.all((y == 0) | (y == 2.0))


@pytest.mark.parametrize("size", sorted(MODEL_SIZES))
def test_named_sizes_build(size):
    cfg = ModelConfig(**MODEL_SIZES[size])
    enc = build_encoder(cfg)
    assert enc.dim == cfg.dim and len(enc.blocks) == cfg.depth
