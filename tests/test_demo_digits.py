"""``synth demo --domain digits``: a CNN on a hidden image program, recovered blind;
the ``digits-cnn`` architecture and ``synth search --domain digits``."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from oracles.architectures import load_model, new_model, save_model
from oracles.base import OracleError
from synth.cli import main
from synth.demo_digits import encode_digits, hidden_program, load_digits, run




def demo_args(**kw) -> argparse.Namespace:
    base = dict(time_limit=20.0, seed=0, max_atoms=12, beam_width=4, max_feature_size=6,
                primitives=[], json=None, quiet=True, clock="cpu")
    base.update(kw)
    return argparse.Namespace(**base)


def test_hidden_program_is_an_image_program_with_both_labels():
    images, classes = load_digits()
    hidden = hidden_program(images, classes)
    assert hidden.inputs == frozenset({"image"}) and hidden.size <= 15
    labels = hidden.evaluate({"image": images})
    assert 0.2 < labels.mean() < 0.6


def test_demo_recovers_the_hidden_program(tmp_path, capsys):
    out = tmp_path / "demo.json"
    assert run(demo_args(json=str(out))) == 0
    printed = capsys.readouterr().out
    assert "Hidden:" in printed and "Recovered:" in printed
    data = json.loads(out.read_text())
    assert data["demo"]["network_agreement_with_hidden"] > 0.93
    assert data["demo"]["agreement_with_hidden"] >= 0.95
    assert data["best"]["size"] <= 15 and data["best"]["evidence"]["features"]


def test_digits_cnn_round_trips_and_checks_its_inputs(tmp_path):
    torch.manual_seed(0)
    module, spec = new_model("digits-cnn")
    path = tmp_path / "digits.pt"
    save_model(path, module, "digits-cnn", spec.config)
    loaded, loaded_spec = load_model(path)
    assert loaded_spec.arch == "digits-cnn" and loaded_spec.input_names == ("image",)
    x = encode_digits({"image": np.zeros((3, 8, 8))})
    assert x.shape == (3, 1, 8, 8)
    with pytest.raises(OracleError, match=r"shape \(N, 8, 8\)"):
        encode_digits({"image": np.zeros((3, 28, 28))})
    with pytest.raises(OracleError, match=r"\[0, 1\]"):
        encode_digits({"image": np.full((3, 8, 8), 2.0)})
    # a bare state dict needs the architecture named, and its sizes come from the shapes
    bare = tmp_path / "bare.pt"
    torch.save(module.state_dict(), bare)
    _, bare_spec = load_model(bare, "digits-cnn")
    assert bare_spec.config == {"channels": 8, "hidden": 64, "n_classes": 2}


def test_search_over_digits_with_a_hint_through_the_cli(tmp_path, capsys):
    images, classes = load_digits()
    torch.manual_seed(0)
    module, spec = new_model("digits-cnn")
    path = tmp_path / "digits.pt"
    save_model(path, module, "digits-cnn", spec.config)
    hint = tmp_path / "hint.png"  # a big picture of a zero, resized to 8x8 on loading
    big = np.kron(images[classes == 0][0], np.ones((8, 8)))
    Image.fromarray((big * 255).astype(np.uint8)).save(hint)
    out = tmp_path / "result.json"
    code = main(["search", "--domain", "digits", "--model", str(path), "--arch", "digits-cnn",
                 "--hint", str(hint), "--time-limit", "5", "--json", str(out), "--quiet"])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["templates"]["T_hint"] == "hint:hint.png"
    assert data["best"]["size"] <= 15 and "fidelity_all_queries" in data["best"]
    assert "Template sources:" in capsys.readouterr().out
