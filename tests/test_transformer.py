"""The challenge-2 transformer: forward pass, checkpoint loading, hook points, replica training."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from oracles.base import OracleError
from oracles.transformer import (HOOK_SHAPES, HookPoint, TransformerConfig, build_transformer,
                                 encode_pairs, infer_config, load_transformer, run_with_cache)
from oracles.transformer_training import (ReplicaReport, TrainingConfig, cached_replica, fit,
                                          replica_path, split_pairs, train_replica)

TINY = TransformerConfig(d_model=24, n_heads=3, d_head=5, d_mlp=40)

#: Shapes from the brief, written out by hand for a batch of 7 in the published configuration.
EXPECTED_HOOKS = {
    "hook_embed": (7, 3, 128),
    "hook_pos_embed": (7, 3, 128),
    "blocks.0.hook_resid_pre": (7, 3, 128),
    "blocks.0.attn.hook_q": (7, 3, 8, 16),
    "blocks.0.attn.hook_k": (7, 3, 8, 16),
    "blocks.0.attn.hook_v": (7, 3, 8, 16),
    "blocks.0.attn.hook_attn_scores": (7, 8, 3, 3),
    "blocks.0.attn.hook_pattern": (7, 8, 3, 3),
    "blocks.0.attn.hook_z": (7, 3, 8, 16),
    "blocks.0.attn.hook_result": (7, 3, 8, 128),
    "blocks.0.hook_attn_out": (7, 3, 128),
    "blocks.0.hook_resid_mid": (7, 3, 128),
    "blocks.0.mlp.hook_pre": (7, 3, 1024),
    "blocks.0.mlp.hook_post": (7, 3, 1024),
    "blocks.0.hook_mlp_out": (7, 3, 128),
    "blocks.0.hook_resid_post": (7, 3, 128),
    "hook_logits": (7, 2),
}


def grokking_state(cfg: TransformerConfig = TransformerConfig(), seed: int = 0) -> dict:
    """Random parameters in the grokking-code layout, plus the mask buffer that code saves."""
    g = torch.Generator().manual_seed(seed)
    h, e, d, m = cfg.n_heads, cfg.d_head, cfg.d_model, cfg.d_mlp
    shapes = {"embed.W_E": (d, cfg.d_vocab), "pos_embed.W_pos": (cfg.n_ctx, d),
              "blocks.0.attn.W_K": (h, e, d), "blocks.0.attn.W_Q": (h, e, d),
              "blocks.0.attn.W_V": (h, e, d), "blocks.0.attn.W_O": (d, e * h),
              "blocks.0.mlp.W_in": (m, d), "blocks.0.mlp.b_in": (m,),
              "blocks.0.mlp.W_out": (d, m), "blocks.0.mlp.b_out": (d,),
              "unembed.W_U": (d, cfg.d_vocab_out)}
    state = {k: torch.randn(*s, generator=g) / np.sqrt(s[-1]) for k, s in shapes.items()}
    state["blocks.0.attn.mask"] = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx))
    return state


def reference_forward(state: dict, tokens: torch.Tensor, d_head: int) -> dict[str, torch.Tensor]:
    """The grokking code's forward pass, transcribed with einsum on a state dict."""
    sd = {k: v.double() for k, v in state.items()}
    pos = tokens.shape[1]
    x = torch.einsum("dbp->bpd", sd["embed.W_E"][:, tokens])
    x = x + sd["pos_embed.W_pos"][:pos]
    k = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_K"], x)
    q = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_Q"], x)
    v = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_V"], x)
    scores = torch.einsum("biph,biqh->biqp", k, q)
    mask = torch.tril(torch.ones(pos, pos, dtype=torch.float64))
    masked = torch.tril(scores) - 1e10 * (1 - mask)
    pattern = torch.softmax(masked / np.sqrt(d_head), dim=-1)
    z = torch.einsum("biph,biqp->biqh", v, pattern)
    b, i, q_len, hd = z.shape
    z_flat = z.permute(0, 2, 1, 3).reshape(b, q_len, i * hd)  # 'b i q h -> b q (i h)'
    attn_out = torch.einsum("df,bqf->bqd", sd["blocks.0.attn.W_O"], z_flat)
    mid = x + attn_out
    pre = torch.einsum("md,bpd->bpm", sd["blocks.0.mlp.W_in"], mid) + sd["blocks.0.mlp.b_in"]
    post = torch.relu(pre)
    post_resid = mid + torch.einsum("dm,bpm->bpd", sd["blocks.0.mlp.W_out"], post) \
        + sd["blocks.0.mlp.b_out"]
    logits = post_resid @ sd["unembed.W_U"]
    return {"logits": logits[:, -1], "pattern": pattern, "z": z.permute(0, 2, 1, 3),
            "attn_out": attn_out, "post": post, "resid_post": post_resid}


def some_tokens(n: int = 50, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return encode_pairs({"x": rng.integers(0, 113, n), "y": rng.integers(0, 113, n)})


def save(obj, path):
    torch.save(obj, path)
    return path


# ---------------------------------------------------------------------------
# forward pass


@pytest.mark.parametrize("cfg", [TransformerConfig(), TINY], ids=["published", "tiny"])
def test_forward_matches_reference(cfg):
    model = build_transformer(cfg).eval()
    tokens = some_tokens()
    ref = reference_forward(model.state_dict(), tokens, cfg.d_head)
    names = ["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_attn_out",
             "blocks.0.mlp.hook_post", "blocks.0.hook_resid_post"]
    logits, cache = run_with_cache(model, tokens, names)
    torch.testing.assert_close(logits.double(), ref["logits"], atol=1e-4, rtol=1e-4)
    for name, key in zip(names, ["pattern", "z", "attn_out", "post", "resid_post"]):
        torch.testing.assert_close(cache[name].double(), ref[key], atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        fast = model(tokens, last_only=True)
    torch.testing.assert_close(fast, logits, atol=1e-5, rtol=1e-5)


def test_attention_is_causal():
    model = build_transformer(TINY).eval()
    _, cache = run_with_cache(model, some_tokens(5), ["blocks.0.attn.hook_pattern"])
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert torch.all(pattern.triu(diagonal=1) == 0)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(5, 3, 3))


def test_encode_pairs():
    tokens = encode_pairs({"x": np.array([0, 112, 5]), "y": np.array([3.0, 0.0, 112.0])})
    assert tokens.dtype == torch.long
    assert tokens.tolist() == [[0, 3, 113], [112, 0, 113], [5, 112, 113]]
    with pytest.raises(OracleError, match="'y'.*0..112"):
        encode_pairs({"x": np.array([1]), "y": np.array([113])})
    with pytest.raises(OracleError, match="missing"):
        encode_pairs({"x": np.array([1])})
    with pytest.raises(OracleError, match="integers"):
        encode_pairs({"x": np.array([1.5]), "y": np.array([1])})


# ---------------------------------------------------------------------------
# loading checkpoints


@pytest.mark.parametrize("wrap", ["bare", "model-key"])
def test_loader_maps_grokking_layout(tmp_path, wrap):
    state = grokking_state()
    payload = state if wrap == "bare" else {"model": state, "epoch": 40000}
    model = load_transformer(save(payload, tmp_path / "grok.pt"))
    tokens = some_tokens()
    with torch.no_grad():
        logits = model(tokens)
    torch.testing.assert_close(logits.double(), reference_forward(state, tokens, 16)["logits"],
                               atol=1e-4, rtol=1e-4)
    assert model.cfg == TransformerConfig()


def test_own_state_dict_round_trips(tmp_path):
    model = build_transformer(TINY).eval()
    loaded = load_transformer(save(model.state_dict(), tmp_path / "own.pt"))
    assert loaded.cfg == TINY
    tokens = some_tokens()
    with torch.no_grad():
        assert torch.equal(model(tokens), loaded(tokens))


@pytest.mark.parametrize("key", ["blocks.0.mlp.b_in", "blocks.0.attn.W_K", "embed.W_E"])
def test_missing_key_is_named(tmp_path, key):
    state = grokking_state()
    del state[key]
    with pytest.raises(OracleError, match=key.replace(".", r"\.")):
        load_transformer(save(state, tmp_path / "broken.pt"))


def test_shape_mismatch_names_expected_and_found(tmp_path):
    state = grokking_state()
    state["blocks.0.attn.W_O"] = torch.zeros(128, 64)
    with pytest.raises(OracleError, match=r"W_O: expected \(128, 128\), found \(128, 64\)"):
        load_transformer(save(state, tmp_path / "bad.pt"))
    with pytest.raises(OracleError, match=r"unembed\.W_U: expected \(24, 2\), found \(128, 2\)"):
        load_transformer(save(grokking_state(), tmp_path / "ok.pt"), TINY)


def test_loader_refuses_non_weights(tmp_path):
    path = tmp_path / "notes.pt"
    torch.save({"model": grokking_state(), "config": TrainingConfig()}, path)  # a dataclass
    with pytest.raises(OracleError, match="notes.pt"):
        load_transformer(path)
    with pytest.raises(OracleError, match="no such file"):
        load_transformer(tmp_path / "absent.pt")
    nan_state = grokking_state()
    nan_state["unembed.W_U"][0, 0] = float("nan")
    with pytest.raises(OracleError, match="NaN"):
        load_transformer(save(nan_state, tmp_path / "nan.pt"))


def test_infer_config():
    assert infer_config(grokking_state(TINY)) == {
        "d_vocab": 114, "d_vocab_out": 2, "n_ctx": 3, "d_model": 24, "n_heads": 3, "d_head": 5,
        "d_mlp": 40, "n_layers": 1}


# ---------------------------------------------------------------------------
# hook points


def test_every_hook_point_is_reachable_with_its_shape():
    model = build_transformer().eval()
    modules = dict(model.named_modules())
    hook_names = {n for n, m in modules.items() if isinstance(m, HookPoint)}
    assert hook_names == set(EXPECTED_HOOKS)
    assert model.cfg.hook_shapes(7) == EXPECTED_HOOKS
    seen = {}
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out, n=n: seen.__setitem__(n, tuple(out.shape))) for n in EXPECTED_HOOKS]
    with torch.no_grad():
        model(some_tokens(7))
    for handle in handles:
        handle.remove()
    assert seen == EXPECTED_HOOKS


def test_hook_shapes_follow_the_config():
    model = build_transformer(TINY).eval()
    _, cache = run_with_cache(model, some_tokens(4), TINY.hook_shapes(4))
    assert {n: tuple(v.shape) for n, v in cache.items()} == TINY.hook_shapes(4)
    assert set(HOOK_SHAPES) >= {"hook_logits", "blocks.{L}.attn.hook_result"}


def test_hooks_can_edit_activations():
    model = build_transformer(TINY).eval()
    tokens = some_tokens()
    ablate = model.blocks[0].attn.hook_result.register_forward_hook(
        lambda _m, _i, out: torch.zeros_like(out))
    _, cache = run_with_cache(model, tokens, ["blocks.0.hook_attn_out"])
    ablate.remove()
    assert torch.all(cache["blocks.0.hook_attn_out"] == 0)


def test_unknown_hook_name():
    with pytest.raises(OracleError, match="hook_nope"):
        run_with_cache(build_transformer(TINY), some_tokens(2), ["blocks.0.hook_nope"])


# ---------------------------------------------------------------------------
# replica training


def test_split_is_the_challenges():
    train, test = split_pairs()
    assert (len(train), len(test)) == (6384, 6385)
    pairs = [(x, y) for x in range(113) for y in range(113)]
    state = random.getstate()
    try:
        random.seed(0)
        random.shuffle(pairs)
    finally:
        random.setstate(state)
    assert [tuple(p) for p in train] == pairs[:6384]
    assert [tuple(p) for p in test] == pairs[6384:]


def toy_labels() -> np.ndarray:
    x, y = np.meshgrid(np.arange(113), np.arange(113), indexing="ij")
    return ((x + y) % 7 < 3).astype(np.float64)


def test_short_run_is_deterministic_for_a_seed():
    torch.manual_seed(123)
    before = torch.randn(3)
    torch.manual_seed(123)
    runs = [train_replica(toy_labels(), epochs=30, seed=s, config=TINY)[0] for s in (4, 4, 5)]
    assert torch.equal(torch.randn(3), before)  # the caller's RNG is untouched
    same = runs[0].state_dict(), runs[1].state_dict()
    assert all(torch.equal(same[0][k], same[1][k]) for k in same[0])
    assert not torch.equal(runs[0].embed.W_E, runs[2].embed.W_E)


def test_full_size_run_on_a_slice_learns_and_repeats():
    train, test = split_pairs()
    labels = toy_labels().astype(np.int64)
    data = []
    for pairs in (train[:256], test[:256]):
        data += [encode_pairs({"x": pairs[:, 0], "y": pairs[:, 1]}),
                 torch.as_tensor(labels[pairs[:, 0], pairs[:, 1]])]
    reports, weights, heard = [], [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_transformer()
        reports.append(fit(model, *data, epochs=30, training=TrainingConfig(eval_every=10),
                           progress=heard.append))
        weights.append(model.unembed.W_U.detach().clone())
    assert torch.equal(weights[0], weights[1])
    assert reports[0].epochs == 30 and reports[0].train_accuracy > 0.8
    assert [s.epoch for s in heard] == [10, 20, 30] * 2


def test_patience_stops_early():
    training = TrainingConfig(lr=0.0, eval_every=1, patience=3)
    _, report = train_replica(toy_labels(), epochs=50, config=TINY, training=training)
    assert report.stopped_early and report.epochs == 4


def test_labels_are_checked():
    with pytest.raises(ValueError, match=r"shape \(113, 113\)"):
        train_replica(np.zeros((10, 10)), epochs=1, config=TINY)
    with pytest.raises(ValueError, match="0..1"):
        train_replica(np.full((113, 113), 2), epochs=1, config=TINY)
    with pytest.raises(ValueError, match="integers"):
        train_replica(np.full((113, 113), 0.5), epochs=1, config=TINY)


def test_cached_replica_trains_once(tmp_path, monkeypatch):
    labels = toy_labels()
    model, report = cached_replica(labels, tmp_path, seed=1, epochs=5, config=TINY)
    path = replica_path(labels, tmp_path, seed=1, epochs=5, config=TINY)
    assert path.exists() and list(tmp_path.iterdir()) == [path]
    assert isinstance(report, ReplicaReport) and report.epochs == 5

    import oracles.transformer_training as training_module
    monkeypatch.setattr(training_module, "train_replica",
                        lambda *a, **k: pytest.fail("trained again instead of reading the cache"))
    again, again_report = cached_replica(labels.astype(np.int32), tmp_path, seed=1, epochs=5,
                                         config=TINY)
    assert again_report == report
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    assert torch.equal(load_transformer(path).embed.W_E, model.embed.W_E)
    assert replica_path(labels, tmp_path, seed=2, epochs=5, config=TINY) != path
    assert replica_path(1 - labels, tmp_path, seed=1, epochs=5, config=TINY) != path


def test_broken_cache_file_is_retrained(tmp_path):
    labels = toy_labels()
    path = replica_path(labels, tmp_path, epochs=3, config=TINY)
    path.write_bytes(b"not a checkpoint")
    _, report = cached_replica(labels, tmp_path, epochs=3, config=TINY)
    assert report.epochs == 3
    assert torch.load(path, weights_only=True)["report"]["epochs"] == 3


def test_cache_dir_defaults_to_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(tmp_path))
    assert replica_path(toy_labels(), epochs=3, config=TINY).parent == tmp_path
