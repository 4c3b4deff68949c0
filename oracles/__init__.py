"""What the network says: labels, logits and internal features for query batches."""
from oracles.base import Oracle, OracleError

__all__ = ["Oracle", "OracleError"]
from oracles.architectures import (ARCHITECTURES, Architecture, ModelSpec, get_architecture,
                                   load_model, new_model, register_architecture, save_model)
from oracles.safe_load import load_pickled_arrays, load_state_dict
from oracles.table import TableOracle
from oracles.torch_oracle import TorchOracle
from oracles.training import TrainingReport, train_classifier

__all__ += ["ARCHITECTURES", "Architecture", "ModelSpec", "get_architecture", "load_model",
            "new_model", "register_architecture", "save_model", "load_pickled_arrays",
            "load_state_dict", "TableOracle", "TorchOracle", "TrainingReport",
            "train_classifier"]
