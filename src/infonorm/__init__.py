"""infonorm: cross-entropy fitting, maximum-mutual-information training and layer
normalization with hand-derived backpropagation, each checked against independent
references (TTIC 31230, Quiz 1)."""

from infonorm import geometric
from infonorm.layer_norm import LayerNorm, layer_norm

__all__ = ["LayerNorm", "geometric", "layer_norm"]
