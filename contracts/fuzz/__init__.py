"""`dapi-contract fuzz-client`: run a client against the mock under varied answers, and judge it."""

from contracts.fuzz.client_under_test import reference_client
from contracts.fuzz.runner import fuzz_client
from contracts.fuzz.scenarios import KEY_TYPES, SCENARIO_RULES, catalogue

__all__ = ["KEY_TYPES", "SCENARIO_RULES", "catalogue", "fuzz_client", "reference_client"]
