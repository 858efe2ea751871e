"""infonorm: cross-entropy fitting, maximum-mutual-information training and layer
normalization with hand-derived backpropagation, each checked against independent
references (TTIC 31230, Quiz 1).

The ops below need torch, numpy and scipy only; the quiz harness on top of them
(`infonorm.quiz`: claims, report, command line) needs the `report` extra.
"""

from importlib import metadata

from infonorm import geometric
from infonorm.layer_norm import LayerNorm, layer_norm, replace_layer_norms
from infonorm.metrics import entropies, matched_accuracy
from infonorm.mutual_information import MMILoss, mutual_information

try:
    __version__ = metadata.version("infonorm")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "LayerNorm",
    "MMILoss",
    "__version__",
    "entropies",
    "geometric",
    "layer_norm",
    "matched_accuracy",
    "mutual_information",
    "replace_layer_norms",
]
