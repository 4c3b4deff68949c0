"""Oracles: safe loading, label tables, architectures, torch oracles, training."""
from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dsl.domains import GridDomain, parse_domain
from oracles import (ARCHITECTURES, Oracle, OracleError, TableOracle, TorchOracle,
                     TrainingReport, load_model, load_pickled_arrays, load_state_dict,
                     new_model, save_model, train_classifier)
from oracles.architectures import ModelSpec
from oracles.training import accuracy
from tests.helpers import data_file







@pytest.fixture
def label_pickle() -> Path:
    return data_file("casper", "transformer_label_info.pkl")


@pytest.fixture
def mnist_weights() -> Path:
    return data_file("casper", "mnist_model.pt")


def small_mlp(domain: GridDomain, seed: int = 0, hidden=(16,)) -> tuple[nn.Module, ModelSpec]:
    torch.manual_seed(seed)
    return new_model("mlp", {"hidden": list(hidden)}, domain=domain)


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28))


# ---------------------------------------------------------------------------
# safe_load


class _Exploit:
    """Pickles as a call to os.system; loading it must never run that call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_label_pickle_loads(label_pickle):
    arrays = load_pickled_arrays(label_pickle)
    assert set(arrays) == {"labels", "model_labels"}
    for table in arrays.values():
        assert table.shape == (113, 113)
        assert set(np.unique(table)) <= {0, 1}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickled_arrays_round_trip_every_protocol(tmp_path, protocol):
    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3).T, "b": np.linspace(0, 1, 5),
              "c": np.array([True, False])}
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))
    loaded = load_pickled_arrays(path)
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)
        assert loaded[key].dtype == value.dtype


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_with_code_is_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"labels": _Exploit(marker)}, protocol=protocol))
    with pytest.raises(OracleError, match=r"refusing to load global (posix|os|nt)\.system"):
        load_pickled_arrays(path)
    assert not marker.exists()


def test_pickle_of_arbitrary_class_is_refused(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps({"labels": GridDomain((2, 2))}))
    with pytest.raises(OracleError, match="dsl.domains.GridDomain"):
        load_pickled_arrays(path)


def test_pickle_that_is_not_a_dict_of_arrays(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([np.zeros(2)]))
    with pytest.raises(OracleError, match="holds a list"):
        load_pickled_arrays(path)
    path.write_bytes(pickle.dumps({"a": [1, 2]}))
    with pytest.raises(OracleError, match="'a' holds a list"):
        load_pickled_arrays(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(OracleError, match="list.pkl"):
        load_pickled_arrays(path)
    with pytest.raises(OracleError, match="nowhere.pkl"):
        load_pickled_arrays(tmp_path / "nowhere.pkl")


def test_load_state_dict_real_file(mnist_weights):
    state = load_state_dict(mnist_weights)
    assert tuple(state["fc1.weight"].shape) == (200, 400)
    assert tuple(state["conv1.weight"].shape) == (8, 1, 3, 3)


def test_load_state_dict_errors_name_the_file(tmp_path):
    with pytest.raises(OracleError, match="missing.pt"):
        load_state_dict(tmp_path / "missing.pt")
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(OracleError, match="text.pt is not a loadable torch"):
        load_state_dict(text)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(OracleError, match="list.pt holds a list"):
        load_state_dict(listed)
    mixed = tmp_path / "mixed.pt"
    torch.save({"w": torch.zeros(2), "step": 3}, mixed)
    with pytest.raises(OracleError, match="'step'"):
        load_state_dict(mixed)
    evil = tmp_path / "evil.pt"
    torch.save({"w": _Exploit(tmp_path / "pwned")}, evil)
    with pytest.raises(OracleError, match="evil.pt"):
        load_state_dict(evil)
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------
# TableOracle


def test_table_oracle_on_published_labels(label_pickle):
    domain = parse_domain("grid:113x113")
    oracle = TableOracle.from_file(label_pickle, domain, key="labels")
    assert isinstance(oracle, Oracle)
    table = load_pickled_arrays(label_pickle)["labels"]
    inputs = domain.all_inputs()
    labels = oracle.labels(inputs)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels.reshape(113, 113), table)
    assert oracle.labels({"x": np.array([5]), "y": np.array([7])})[0] == table[5, 7]
    assert oracle.queries == 113 * 113 + 1
    assert oracle.logits(inputs) is None
    assert oracle.feature_names == ()
    with pytest.raises(OracleError, match="no internal features"):
        oracle.features(inputs, ["x"])


def test_table_oracle_pickle_key_errors(label_pickle):
    domain = parse_domain("grid:113x113")
    with pytest.raises(OracleError, match=r"\['labels', 'model_labels'\]"):
        TableOracle.from_file(label_pickle, domain)
    with pytest.raises(OracleError, match="no array 'nope'.*'model_labels'"):
        TableOracle.from_file(label_pickle, domain, key="nope")
    with pytest.raises(OracleError, match=r"needs shape \(100, 100\)"):
        TableOracle.from_file(label_pickle, parse_domain("grid:100x100"), key="labels")


def test_table_oracle_validation(tmp_path):
    domain = parse_domain("grid:3x4")
    table = np.arange(12).reshape(3, 4) % 2
    with pytest.raises(OracleError, match=r"shape \(4, 3\).*needs shape \(3, 4\)"):
        TableOracle(table.T, domain)
    with pytest.raises(OracleError, match="non-integer"):
        TableOracle(table + 0.5, domain)
    oracle = TableOracle(table, domain)
    with pytest.raises(OracleError, match=r"'y'.*outside the domain range 0\.\.3"):
        oracle.labels({"x": np.array([0]), "y": np.array([4])})
    with pytest.raises(OracleError, match="'x'.*outside"):
        oracle.labels({"x": np.array([-1]), "y": np.array([0])})
    with pytest.raises(OracleError, match="non-integer"):
        oracle.labels({"x": np.array([0.5]), "y": np.array([0])})
    with pytest.raises(OracleError, match="missing inputs"):
        oracle.labels({"x": np.array([0])})
    assert oracle.queries == 0
    assert oracle.labels({"x": np.array([2.0]), "y": np.array([3])})[0] == table[2, 3]

    npy = tmp_path / "table.npy"
    np.save(npy, table)
    np.testing.assert_array_equal(TableOracle.from_file(npy, domain).table, table)
    single = tmp_path / "single.pkl"
    single.write_bytes(pickle.dumps({"only": table}))
    np.testing.assert_array_equal(TableOracle.from_file(single, domain).table, table)
    with pytest.raises(OracleError, match="expected .npy or .pkl"):
        TableOracle.from_file(tmp_path / "table.csv", domain)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[None] * 4] * 3, dtype=object))
    with pytest.raises(OracleError, match="objects.npy"):
        TableOracle.from_file(objects, domain)


# ---------------------------------------------------------------------------
# architectures


def test_casper_cnn_loads_published_weights(mnist_weights):
    module, spec = load_model(mnist_weights, "casper-cnn")
    assert spec.arch == "casper-cnn" and spec.input_names == ("image",)
    assert not module.training
    images = random_images(7)
    logits = module(spec.encoder()({"image": images}))
    assert logits.shape == (7, 2)
    names = {name for name, _ in module.named_modules()}
    assert {"conv1", "relu1", "drop1", "pool1", "conv2", "relu2", "drop2", "pool2",
            "fc1", "relu3", "fc2"} <= names


def test_casper_cnn_layers_match_the_published_forward(mnist_weights):
    """relu/dropout/pool in the published order, and dropout off in eval mode."""
    module, _ = load_model(mnist_weights, "casper-cnn")
    x = torch.rand(4, 1, 28, 28)
    f = torch.nn.functional
    h = f.max_pool2d(f.relu(module.conv1(x)), 2)
    h = f.max_pool2d(f.relu(module.conv2(h)), 2)
    expected = module.fc2(f.relu(module.fc1(h.flatten(1))))
    torch.testing.assert_close(module(x), expected)
    torch.testing.assert_close(module(x), module(x))


def test_wrong_shapes_give_clear_errors(tmp_path, mnist_weights):
    state = load_state_dict(mnist_weights)
    state["fc1.weight"] = torch.zeros(200, 300)
    bad = tmp_path / "bad_fc1.pt"
    torch.save(state, bad)
    with pytest.raises(OracleError, match=r"bad_fc1.pt.*fc1.weight: expected shape "
                                          r"\(200, 400\), found \(200, 300\)"):
        load_model(bad, "casper-cnn")
    del state["fc2.bias"]
    torch.save(state, bad)
    with pytest.raises(OracleError, match=r"missing fc2.bias \(shape \(2,\)\)"):
        load_model(bad, "casper-cnn")
    with pytest.raises(OracleError, match="bare state dict; say which architecture"):
        load_model(mnist_weights)
    with pytest.raises(OracleError, match="unknown architecture 'resnet'"):
        load_model(mnist_weights, "resnet")
    with pytest.raises(OracleError, match="mnist_model.pt: not an mlp state dict"):
        load_model(mnist_weights, "mlp", domain=parse_domain("grid:200x200"))


def test_mlp_checkpoint_round_trip(tmp_path):
    domain = parse_domain("grid:5x7")
    module, spec = small_mlp(domain)
    path = tmp_path / "mlp.pt"
    save_model(path, module, spec.arch, spec.config)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["arch"] == "mlp" and raw["config"] == spec.config
    loaded, loaded_spec = load_model(path)
    assert loaded_spec == spec
    x = spec.encoder()(domain.all_inputs())
    assert x.shape == (35, 12)
    torch.testing.assert_close(loaded(x), module(x))
    load_model(path, "mlp", domain=domain)
    with pytest.raises(OracleError, match="holds a 'mlp' model, not 'casper-cnn'"):
        load_model(path, "casper-cnn")
    with pytest.raises(OracleError, match="grid:7x5"):
        load_model(path, domain=parse_domain("grid:7x5"))


def test_mlp_bare_state_dict_infers_config(tmp_path):
    domain = parse_domain("grid:5x7")
    module, spec = small_mlp(domain, hidden=(8, 6))
    path = tmp_path / "bare.pt"
    torch.save(module.state_dict(), path)
    loaded, loaded_spec = load_model(path, "mlp", domain=domain)
    assert loaded_spec.config["hidden"] == [8, 6]
    x = spec.encoder()(domain.all_inputs())
    torch.testing.assert_close(loaded(x), module(x))
    with pytest.raises(OracleError, match="bare.pt.*give the domain"):
        load_model(path, "mlp")
    with pytest.raises(OracleError, match=r"fc1.weight: expected shape \(8, 13\), found "
                                          r"\(8, 12\)"):
        load_model(path, "mlp", domain=parse_domain("grid:6x7"))


def test_save_model_validates(tmp_path):
    domain = parse_domain("grid:4x4")
    module, spec = small_mlp(domain)
    with pytest.raises(OracleError, match="unknown architecture"):
        save_model(tmp_path / "m.pt", module, "nope", spec.config)
    with pytest.raises(OracleError, match=r"config\['hidden'\]\[0\] is a int64"):
        save_model(tmp_path / "m.pt", module, "mlp", {**spec.config, "hidden": [np.int64(16)]})
    with pytest.raises(OracleError, match="fc1.weight: expected shape"):
        save_model(tmp_path / "m.pt", module, "mlp", {**spec.config, "hidden": [17]})
    with pytest.raises(OracleError, match="cannot build 'mlp'"):
        new_model("mlp", {"bogus": 1}, domain=domain)


def test_transformer_entry_is_lazy(monkeypatch):
    assert "casper-transformer" in ARCHITECTURES
    monkeypatch.setitem(sys.modules, "oracles.transformer", None)
    with pytest.raises(OracleError, match="oracles/transformer.py is missing"):
        new_model("casper-transformer")


def test_transformer_checkpoint_round_trip(tmp_path):
    pytest.importorskip("oracles.transformer")
    sizes = {"d_model": 8, "n_heads": 2, "d_head": 4, "d_mlp": 16}
    torch.manual_seed(0)
    module, spec = new_model("casper-transformer", sizes)
    path = tmp_path / "transformer.pt"
    torch.save(module.state_dict(), path)
    loaded, loaded_spec = load_model(path, "casper-transformer")
    assert {k: loaded_spec.config[k] for k in sizes} == sizes
    oracle = TorchOracle(loaded, loaded_spec.encoder(), loaded_spec.input_names)
    inputs = {"x": np.array([1, 2, 112]), "y": np.array([0, 5, 112])}
    tokens = spec.encoder()(inputs)
    np.testing.assert_allclose(oracle.logits(inputs), module(tokens).double().detach().numpy(),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------
# TorchOracle


def test_torch_oracle_labels_logits_features():
    domain = parse_domain("grid:6x5")
    module, spec = small_mlp(domain, hidden=(8, 4))
    oracle = TorchOracle(module, spec.encoder(), spec.input_names, batch_size=7)
    assert isinstance(oracle, Oracle)
    assert oracle.feature_names == ("fc1", "relu1", "fc2", "relu2", "out", "logits")
    inputs = domain.all_inputs()
    logits = oracle.logits(inputs)
    assert logits.dtype == np.float64 and logits.shape == (30, 2)
    np.testing.assert_array_equal(oracle.labels(inputs), logits.argmax(axis=1))
    whole = TorchOracle(module, spec.encoder(), spec.input_names).logits(inputs)
    np.testing.assert_allclose(whole, logits, rtol=1e-6, atol=1e-7)
    features = oracle.features(inputs, ["fc1", "relu2", "logits"])
    assert features["fc1"].shape == (30, 8) and features["relu2"].shape == (30, 4)
    assert (features["relu2"] >= 0).all()
    np.testing.assert_allclose(features["relu2"] @ module.out.weight.detach().double().numpy().T
                               + module.out.bias.detach().double().numpy(), logits,
                               rtol=1e-5, atol=1e-6)
    assert oracle.queries == 30 * 3
    with pytest.raises(OracleError, match="unknown features \\['fc9'\\].*'relu1'"):
        oracle.features(inputs, ["fc9"])
    with pytest.raises(OracleError, match="'x'.*outside the domain range"):
        oracle.labels({"x": np.array([6]), "y": np.array([0])})
    empty = oracle.logits({"x": np.zeros(0, dtype=int), "y": np.zeros(0, dtype=int)})
    assert empty.shape == (0, 2)
    assert oracle.queries == 30 * 3


def test_torch_oracle_cnn_features_and_gradients(mnist_weights):
    oracle = TorchOracle.from_file(mnist_weights, "casper-cnn", batch_size=3)
    images = random_images(5)
    features = oracle.features({"image": images}, ["conv1", "pool1", "pool2", "relu3"])
    assert features["conv1"].shape == (5, 8 * 26 * 26)
    assert features["pool1"].shape == (5, 8 * 13 * 13)
    assert features["pool2"].shape == (5, 400) and features["relu3"].shape == (5, 200)
    gradients = oracle.input_gradients({"image": images})
    assert gradients.shape == (5, 28, 28) and gradients.dtype == np.float64
    # finite-difference check of one pixel (float64 copy of the network)
    module = oracle.module.double()
    x = torch.from_numpy(images[:1]).unsqueeze(1)
    step = torch.zeros_like(x)
    step[0, 0, 14, 14] = 1e-4
    diff = lambda t: (module(t)[:, 1] - module(t)[:, 0]).item()
    estimate = (diff(x + step) - diff(x - step)) / 2e-4
    assert estimate == pytest.approx(gradients[0, 14, 14], rel=1e-3, abs=1e-6)
    with pytest.raises(OracleError, match=r"'image' has values .*pixels in \[0, 1\]"):
        oracle.labels({"image": images * 2})
    with pytest.raises(OracleError, match=r"shape \(N, 28, 28\)"):
        oracle.labels({"image": np.zeros((2, 27, 28))})


def test_input_gradients_of_a_linear_model():
    linear = nn.Linear(3, 2)
    encode = lambda env: torch.as_tensor(np.asarray(env["v"]), dtype=torch.float32)
    oracle = TorchOracle(linear, encode, ["v"])
    gradients = oracle.input_gradients({"v": np.random.default_rng(0).random((4, 3))})
    expected = (linear.weight[1] - linear.weight[0]).detach().double().numpy()
    np.testing.assert_allclose(gradients, np.tile(expected, (4, 1)), rtol=1e-6)
    class0 = oracle.input_gradients({"v": np.zeros((2, 3))}, target=lambda z: z[:, 0])
    np.testing.assert_allclose(class0[0], linear.weight[0].detach().double().numpy(), rtol=1e-6)
    with pytest.raises(OracleError, match="one value per row"):
        oracle.input_gradients({"v": np.zeros((2, 3))}, target=lambda z: z)


def test_single_logit_and_nan_outputs():
    linear = nn.Linear(1, 1)
    with torch.no_grad():
        linear.weight.fill_(1.0)
        linear.bias.fill_(-0.5)
    encode = lambda env: torch.as_tensor(np.asarray(env["v"], dtype=np.float32)[:, None])
    oracle = TorchOracle(linear, encode, ["v"])
    np.testing.assert_array_equal(oracle.labels({"v": np.array([0.0, 1.0])}), [0, 1])
    with torch.no_grad():
        linear.bias.fill_(float("nan"))
    with pytest.raises(OracleError, match="NaN or inf logits on 2 of 2"):
        oracle.labels({"v": np.array([0.0, 1.0])})


def test_integer_encodings_have_no_gradients():
    domain = parse_domain("grid:3x3")
    embed = nn.Sequential(nn.Embedding(3, 2), nn.Flatten(), nn.Linear(2, 2))
    oracle = TorchOracle(embed, lambda env: torch.as_tensor(env["x"])[:, None], ["x"])
    assert oracle.labels({"x": np.array([0, 2])}).shape == (2,)
    with pytest.raises(OracleError, match="gradients need a floating-point encoding"):
        oracle.input_gradients(domain.all_inputs())


# ---------------------------------------------------------------------------
# training


def _sum_task(side: int = 20) -> tuple[GridDomain, torch.Tensor, torch.Tensor, ModelSpec]:
    domain = parse_domain(f"grid:{side}x{side}")
    inputs = domain.all_inputs()
    _, spec = new_model("mlp", domain=domain)  # the default 2x256
    x = spec.encoder()(inputs)
    y = torch.as_tensor((inputs["x"] + inputs["y"] > side).astype(np.int64))
    return domain, x, y, spec


def test_mlp_learns_a_threshold_quickly():
    domain, x, y, spec = _sum_task()
    torch.manual_seed(0)
    module = spec.build()
    start = time.perf_counter()
    report = train_classifier(module, x, y, epochs=100, lr=1e-3, weight_decay=0.0, seed=0)
    assert time.perf_counter() - start < 10
    assert isinstance(report, TrainingReport)
    assert report.train_accuracy > 0.95 and report.epochs == 100
    assert report.eval_accuracy is None and report.seconds > 0
    assert not module.training
    oracle = TorchOracle(module, spec.encoder(), spec.input_names)
    labels = oracle.labels(domain.all_inputs())
    assert (labels == y.numpy()).mean() == pytest.approx(report.train_accuracy)


def test_training_is_deterministic_for_a_seed():
    _, x, y, spec = _sum_task(side=10)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        module = spec.build()
        train_classifier(module, x, y, epochs=5, lr=1e-3, weight_decay=0.1, seed=3,
                         batch_size=16, betas=(0.9, 0.98))
        runs.append(module.state_dict())
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key]), key
    torch.manual_seed(1)
    other = spec.build()
    train_classifier(other, x, y, epochs=5, lr=1e-3, weight_decay=0.1, seed=4, batch_size=16)
    assert not torch.equal(other.state_dict()["fc1.weight"], runs[0]["fc1.weight"])


def test_training_progress_eval_set_and_errors():
    _, x, y, spec = _sum_task(side=10)
    torch.manual_seed(0)
    module = spec.build()
    seen = []
    report = train_classifier(module, x, y, epochs=50, lr=1e-3, weight_decay=0.0, seed=0,
                              optimizer="adam", eval_set=(x[:20], y[:20]),
                              progress=lambda epoch, loss: seen.append(loss) or epoch == 3)
    assert report.epochs == 3 and len(seen) == 3
    assert report.final_loss == seen[-1]
    assert report.eval_accuracy == pytest.approx(accuracy(module, x[:20], y[:20]))
    bad = dict(epochs=1, lr=1e-3, weight_decay=0.0, seed=0)
    with pytest.raises(ValueError, match="same positive length"):
        train_classifier(module, x, y[:-1], **bad)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train_classifier(module, x, y, optimizer="rmsprop", **bad)
    with pytest.raises(ValueError, match="1-d integer tensor"):
        train_classifier(module, x, y.float(), **bad)
    with pytest.raises(ValueError, match="labels go up to 5"):
        train_classifier(module, x, y * 5, **bad)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        train_classifier(module, x, y, **{**bad, "epochs": 0})
