"""Problem 2 claims."""

from infonorm.claims.engine import Claim

CLAIMS: list[Claim] = []
