"""Problem 3's solution as derivation files that `infonorm.backprop` checks.

Each file is the solution's equations in order, each line's LaTeX (as printed, alignment
marks dropped) above the same line in torch: `layer_norm_printed.py` as printed,
`layer_norm_corrected.py` with lines 3 and 4 corrected, `layer_norm_combined.py` the
combined equations. examples/backprop/ holds copies for reading.
"""
