"""What the network says: labels, logits and internal features for query batches."""
from oracles.base import Oracle, OracleError

__all__ = ["Oracle", "OracleError"]
