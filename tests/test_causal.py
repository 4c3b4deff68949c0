"""Causal tests: counterfactual edits on grids and images, and patching probe directions.

The networks here are built by hand, so what they compute is known: a grid
network whose hidden units read ``x`` and gate ``x > 50``, and an image
network whose first hidden unit is ``dot(image, T)`` and whose label is that
unit above a threshold.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from dsl.domains import GridDomain
from dsl.images import Template
from dsl.program import Var, apply, const
from dsl.types import IMAGE, INT
from oracles.table import TableOracle
from oracles.torch_oracle import TorchOracle
from synth.causal import (Outcome, counterfactual_grid, counterfactual_images, evaluate_with,
                          format_causal, patch_feature, patching, shifted_labels,
                          smallest_flips)

X, Y, IMAGE_VAR = Var("x", INT), Var("y", INT), Var("image", IMAGE)
DOMAIN = GridDomain((101, 101))


class GateX(nn.Module):
    """Hidden units ``(x, relu(x - 50), relu(x - 51))``; label 1 exactly when ``x > 50``.
    The network never reads ``y``."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 3)
        self.relu = nn.ReLU()
        self.out = nn.Linear(3, 2)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
            self.hidden.bias.copy_(torch.tensor([0.0, -50.0, -51.0]))
            self.out.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.0, 20.0, -20.0]]))
            self.out.bias.copy_(torch.tensor([0.0, -10.0]))

    def forward(self, v):
        return self.out(self.relu(self.hidden(v)))


def gate_oracle() -> TorchOracle:
    def encode(env):
        return torch.as_tensor(np.stack([env["x"], env["y"]], axis=1), dtype=torch.float32)
    return TorchOracle(GateX(), encode, ("x", "y"))


def above(var, threshold: int = 50):
    return apply("gt", var, const(threshold))


class DotNet(nn.Module):
    """``hidden[0] = dot(image, T)``, 63 more random hidden units; label 1 when
    ``hidden[0] > threshold``."""

    def __init__(self, template: np.ndarray, threshold: float, width: int = 64) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(template.size, width)
        self.out = nn.Linear(width, 2)
        with torch.no_grad():
            self.hidden.weight[0] = torch.as_tensor(template.ravel(), dtype=torch.float32)
            self.hidden.bias[0] = 0.0
            self.out.weight.zero_()
            self.out.weight[1, 0] = 10.0
            self.out.bias.copy_(torch.tensor([0.0, -10.0 * threshold]))

    def forward(self, image):
        return self.out(self.hidden(self.flatten(image)))


def sparse_images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, 12, 12)) * (rng.random((n, 12, 12)) < 0.3)


def image_setup(template: np.ndarray, n: int = 400):
    images = sparse_images(n)
    threshold = float(np.median((images * template).sum(axis=(1, 2))))

    def encode(env):
        return torch.as_tensor(np.asarray(env["image"]), dtype=torch.float32)
    oracle = TorchOracle(DotNet(template, threshold), encode, ("image",))
    return images, threshold, oracle


def stroke() -> np.ndarray:
    t = np.zeros((12, 12))
    t[2:10, 5:7] = 1.0
    return t


# -- outcomes --------------------------------------------------------------------------

def test_an_outcome_counts_agreement_changes_and_follow_through():
    o = Outcome.of(net_before=[0, 0, 1, 1], net_after=[1, 0, 1, 0],
                   prog_before=[0, 0, 1, 1], prog_after=[1, 1, 1, 1])
    assert (o.n, o.agree, o.network_changed, o.program_changed, o.followed) == (4, 2, 2, 2, 1)
    assert o.fidelity == 0.5
    assert o.to_json() == {"n": 4, "fidelity": 0.5, "network_changes": 0.5,
                           "program_changes": 0.5, "followed": 0.5}
    assert Outcome.pooled([o, o]).agree == 4 and Outcome.of([], [], [], []).fidelity is None
    with pytest.raises(ValueError, match="one entry per edit"):
        Outcome.of([0], [0, 1], [0], [0])


# -- grids -----------------------------------------------------------------------------

def test_smallest_flips_step_across_the_boundary_inside_the_domain():
    env = {"x": np.array([48, 50, 51, 53, 0, 100]), "y": np.zeros(6, dtype=np.int64)}
    steps = smallest_flips(above(X), env, "x", 101, max_step=2)
    assert steps.tolist() == [0, 1, -1, 0, 0, 0]


def test_moves_across_an_atom_the_network_computes_are_followed():
    report = counterfactual_grid(gate_oracle(), above(X), DOMAIN, network="gate")
    (test,) = report.tests
    assert test.target == "x > 50" and test.intervention == "move x"
    assert test.edit.n == 101 * 2 * 6  # both sides of the boundary, 6 steps each way
    assert report.fidelity == 1.0 and test.edit.program_changed == test.edit.n
    # a random move of the same size rarely changes the network's label
    assert test.control.n > 0.9 * test.edit.n
    assert test.control.network_changed / test.control.n < 0.35
    data = report.to_json()
    assert data["counterfactual_fidelity"] == 1.0 and data["network"] == "gate"
    assert json.loads(json.dumps(data)) == data
    assert "grid moves on gate: counterfactual fidelity 1.000" in format_causal([data])


def test_moves_across_an_atom_the_network_ignores_are_not():
    # on the points where x > 50 and y > 50 agree, the two programs fit equally well;
    # moving y across its boundary does not move the network
    env = DOMAIN.all_inputs()
    same = (env["x"] > 50) == (env["y"] > 50)
    points = {k: v[same] for k, v in env.items()}
    report = counterfactual_grid(gate_oracle(), above(Y), DOMAIN, points=points)
    assert report.fidelity == 0.0
    assert report.edit.network_changed == 0


def test_a_program_over_both_inputs_is_moved_along_each():
    program = apply("or_", apply("gt", apply("add", X, Y), const(120)), above(X, 90))
    table = TableOracle(program.evaluate(DOMAIN.all_inputs()).reshape(101, 101).astype(int),
                        DOMAIN)
    report = counterfactual_grid(table, program, DOMAIN, max_step=3, max_points=300)
    assert [(t.target, t.intervention) for t in report.tests] == [
        ("x + y > 120", "move x"), ("x + y > 120", "move y"), ("x > 90", "move x")]
    assert report.fidelity == 1.0 and all(t.edit.n <= 300 for t in report.tests)


def test_grid_inputs_are_checked():
    with pytest.raises(ValueError, match="does not have"):
        counterfactual_grid(gate_oracle(), above(Var("z", INT)), DOMAIN)
    with pytest.raises(ValueError, match="max_step"):
        counterfactual_grid(gate_oracle(), above(X), DOMAIN, max_step=0)


# -- images ----------------------------------------------------------------------------

def test_edits_along_the_networks_template_are_followed_and_noise_is_not():
    images, threshold, oracle = image_setup(stroke())
    t = Template.from_array(stroke(), "stroke")
    right = apply("gt", apply("dot", IMAGE_VAR, t), const(threshold))
    report = counterfactual_images(oracle, right, images, max_images=200)
    (test,) = report.tests
    assert test.intervention == "along T_stroke" and test.edit.n > 190
    assert report.fidelity == 1.0 and test.edit.program_changed == test.edit.n
    assert test.control.network_changed < 0.3 * test.control.n
    assert 0 < len(report.examples) <= 3
    example = report.examples[0]
    assert example["network"][0] != example["network"][1]
    assert set(example) == {"target", "original", "edited", "network", "program"}


def test_edits_along_a_template_the_network_does_not_read_are_not_followed():
    images, threshold, oracle = image_setup(stroke())
    other = np.zeros((12, 12))
    other[5:7, 1:11] = 1.0  # a horizontal bar
    t = Template.from_array(other, "bar")
    feature = apply("dot", IMAGE_VAR, t)
    cut = float(np.median(feature.evaluate({"image": images})))
    report = counterfactual_images(oracle, apply("gt", feature, const(cut)), images,
                                   max_images=200)
    assert report.fidelity < 0.75


def test_an_atom_without_a_template_moves_along_its_gradient():
    images, threshold, oracle = image_setup(np.ones((12, 12)))  # the network thresholds ink
    program = apply("gt", apply("ink", IMAGE_VAR), const(threshold))
    report = counterfactual_images(oracle, program, images, max_images=100)
    assert report.tests[0].intervention == "along gradient at the mean image"
    assert report.fidelity == 1.0


def test_a_constant_program_has_nothing_to_edit():
    images, threshold, oracle = image_setup(stroke(), n=30)
    report = counterfactual_images(oracle, const(True), images)
    assert report.tests == () and report.fidelity is None
    assert report.to_json()["counterfactual_fidelity"] is None


def test_image_inputs_are_checked():
    images, threshold, oracle = image_setup(stroke(), n=30)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        counterfactual_images(oracle, apply("gt", apply("ink", IMAGE_VAR), const(1.0)),
                              images[0])
    with pytest.raises(ValueError, match="does not read the input"):
        counterfactual_images(oracle, above(X), images)


# -- patching --------------------------------------------------------------------------

def test_evaluate_with_replaces_every_occurrence_of_a_subprogram():
    env = {"x": np.array([1, 5, 9]), "y": np.array([0, 0, 0])}
    s = apply("add", X, Y)
    band = apply("or_", apply("lt", s, const(3)), apply("gt", s, const(7)))
    assert evaluate_with(band, env, {}).tolist() == [True, False, True]
    assert evaluate_with(band, env, {s: np.array([5, 1, 5])}).tolist() == [False, True, False]


def test_patching_the_probe_direction_moves_the_label_as_the_program_says():
    images, threshold, oracle = image_setup(stroke())
    feature = apply("dot", IMAGE_VAR, Template.from_array(stroke(), "stroke"))
    program = apply("gt", feature, const(threshold))
    report = patching(oracle, program, {"image": images}, max_pairs=150, network="dotnet")
    # one feature, one layer (the output layer is not patched), two interventions
    assert [t.intervention for t in report.tests] == ["probe at hidden", "encoding at hidden"]
    for test in report.tests:
        assert test.detail["layer"] == "hidden" and test.detail["probe_r2"] > 0.99
        assert test.edit.n == 150 and test.edit.program_changed > 40
        assert test.edit.fidelity > 0.97
        assert test.edit.followed > 0.95 * test.edit.program_changed
        assert test.control.network_changed < 0.5 * test.edit.network_changed
    assert "patching on dotnet" in format_causal([report.to_json()])


def test_patch_feature_swaps_one_direction_between_inputs():
    images, threshold, oracle = image_setup(stroke(), n=60)
    a, b = {"image": images[:30]}, {"image": images[30:]}
    axis = np.zeros(64)
    axis[0] = 1.0  # the unit the label reads
    assert np.array_equal(patch_feature(oracle, "hidden", axis, a, b), oracle.labels(b))
    axis = np.zeros(64)
    axis[5] = 1.0  # a unit the label ignores
    assert np.array_equal(patch_feature(oracle, "hidden", axis, a, b), oracle.labels(a))


def test_patching_explains_what_it_needs():
    images, threshold, oracle = image_setup(stroke(), n=60)
    with pytest.raises(ValueError, match="zero direction"):
        patch_feature(oracle, "hidden", np.zeros(64), {"image": images}, {"image": images})
    with pytest.raises(ValueError, match="unknown features"):
        patch_feature(oracle, "nowhere", np.ones(64), {"image": images}, {"image": images})
    with pytest.raises(ValueError, match="no module 'nowhere'"):
        shifted_labels(oracle, "nowhere", {"image": images}, np.zeros((60, 64)))
    with pytest.raises(ValueError, match="ran on more rows"):
        shifted_labels(oracle, "hidden", {"image": images}, np.zeros((10, 64)))
    with pytest.raises(ValueError, match="no feature to patch"):
        patching(oracle, const(True), {"image": images})
    table = TableOracle(np.zeros((101, 101), dtype=int), DOMAIN)
    with pytest.raises(ValueError, match="no internal features"):
        patch_feature(table, "hidden", np.ones(3), DOMAIN.all_inputs(), DOMAIN.all_inputs())
    with pytest.raises(ValueError, match="a torch module"):
        shifted_labels(table, "hidden", DOMAIN.all_inputs(), np.zeros((101 * 101, 3)))
