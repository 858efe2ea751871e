"""infonorm: cross-entropy fitting, maximum-mutual-information training and layer
normalization with hand-derived backpropagation, each checked against independent
references (TTIC 31230, Quiz 1)."""

from infonorm import geometric
from infonorm.layer_norm import LayerNorm, layer_norm
from infonorm.mutual_information import MMILoss, entropies, matched_accuracy, mutual_information

__all__ = [
    "LayerNorm",
    "MMILoss",
    "entropies",
    "geometric",
    "layer_norm",
    "matched_accuracy",
    "mutual_information",
]
