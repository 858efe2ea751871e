"""Training runs behind the claims and the report: cross-entropy versus MMI, small and seeded.

`binary`: linear classifiers on a separable two-class problem from many random
initializations. `digits`: multinomial logistic regression on scikit-learn's digits.
Each run is deterministic given its seed; `training` holds the loop both share.
"""
