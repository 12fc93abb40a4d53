"""verify-server draws the same examples for a seed whatever state earlier examples left.

Properties whose draws depend on the server's state (the current leverage, a
signature over a fresh timestamp) once made hypothesis stop with "Inconsistent
data generation" (FlakyStrategyDefinition) at 20 examples or more. `make test`
runs the properties with state-dependent draws at 50 and 100 examples on a few
seeds; `make fuzz` (HYPOTHESIS_PROFILE=dev) runs every property on 20 seeds.
The mock has no weight limit here and the runs do not pace themselves (pacing=False).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from contracts.signing import new_pem_pair
from contracts.verify import PROPERTY_NAMES, verify_server
from mockserver.config import DEMO_API_KEY, DEMO_SECRET, Config
from mockserver.harness import MockServer

LONG = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "dev"
SEEDS = range(20) if LONG else (1, 20260501, 987654321)
EXAMPLES = (100,) if LONG else (50, 100)
#: Properties whose draws depend on what the server shows (leverage, a fresh signature).
STATE_DEPENDENT = (
    "malformed_integers_are_1102",
    "duplicate_parameters_are_1101",
    "wrong_signature_is_1022",
    "misplaced_signature_is_1022",
    "stale_or_future_timestamp_is_1021",
)

#: The position configuration properties drawn per example (the others run once).
CONFIGURATION = (
    "margin_type_no_change_is_4046",
    "bad_margin_type_is_1130",
    "bad_position_mode_is_1130",
    "leverage_cap_is_enforced",
)


@pytest.fixture(scope="module")
def unpaced() -> Iterator[MockServer]:
    with MockServer(Config(port=0, weight_per_minute=0)) as server:
        yield server


def _failures(report: object) -> dict[str, str]:
    return {v.name: v.summary for v in report.verdicts if v.outcome != "pass"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("examples", EXAMPLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_state_dependent_properties_hold_at_many_examples(
    unpaced: MockServer, seed: int, examples: int
) -> None:
    report = verify_server(
        unpaced.url,
        DEMO_API_KEY,
        secret=DEMO_SECRET,
        examples=examples,
        seed=seed,
        mock_rules=True,
        change_account_settings=True,
        properties=PROPERTY_NAMES if LONG else STATE_DEPENDENT,
        pacing=False,
        progress=None,
    )
    assert not _failures(report), report.failure_details() or _failures(report)


@pytest.mark.parametrize("seed", SEEDS)
def test_position_configuration_properties_hold_at_many_examples(
    unpaced: MockServer, seed: int
) -> None:
    report = verify_server(
        unpaced.url,
        DEMO_API_KEY,
        secret=DEMO_SECRET,
        examples=50,
        seed=seed,
        mock_rules=True,
        properties=CONFIGURATION,
        pacing=False,
        progress=None,
    )
    assert not _failures(report), report.failure_details() or _failures(report)
    assert len(report.verdicts) == 1 + len(CONFIGURATION)


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_a_flipped_base64_signature_draws_alike_for_every_signature(
    unpaced: MockServer, key_type: str
) -> None:
    pem, public = new_pem_pair(key_type)
    mock = unpaced.handle()
    mock.accounts.add(f"determinism{key_type}", public_key=public)
    mock.close()
    report = verify_server(
        unpaced.url,
        f"determinism{key_type}",
        private_key=pem,
        examples=100,
        seed=SEEDS[0],
        mock_rules=True,
        properties=["wrong_signature_is_1022", "misplaced_signature_is_1022"],
        pacing=False,
        progress=None,
    )
    assert not _failures(report), report.failure_details() or _failures(report)
