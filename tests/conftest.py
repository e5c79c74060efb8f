"""Shared test settings: the hypothesis profiles.

Property tests take their example count from a profile instead of hard-coding
it, so CI and a long run by hand use the same tests:

- ``ci`` (the default): 80 examples per property, no per-example deadline.
- ``thorough``: 400 examples, for a run by hand before a release or after a
  change to the channel, the ports or the runtime::

      HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_properties.py \
          tests/test_api_state_machine.py -p no:randomly --hypothesis-show-statistics

Every session runs with one seed, printed in pytest's header
(``hypothesis profile: ci (80 examples), --hypothesis-seed=N``): when none is
given, one is drawn at random and shown there. To replay a run exactly, pass
it back: ``python -m pytest tests/test_properties.py --hypothesis-seed=N``. A
failing property also prints its smallest failing example and a
``@reproduce_failure(...)`` line to paste above the test.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, settings

# Random graphs are slow to build and run compared with hypothesis' budget for
# data generation; that is the point of them, not a problem to report.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("ci", max_examples=80, deadline=None, suppress_health_check=_SLOW_OK, print_blob=True)
settings.register_profile("thorough", max_examples=400, deadline=None, suppress_health_check=_SLOW_OK, print_blob=True)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "thorough"):
    raise pytest.UsageError(f"HYPOTHESIS_PROFILE must be 'ci' or 'thorough', not {PROFILE!r}")
settings.load_profile(PROFILE)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Draw the session's seed here when none was given, so that it can be printed and replayed."""
    if config.getoption("hypothesis_seed", default=None) is None:
        config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))


def pytest_report_header(config: pytest.Config) -> str:
    """Say which profile runs and with which seed."""
    seed = config.getoption("hypothesis_seed", default=None)
    return f"hypothesis profile: {PROFILE} ({settings.default.max_examples} examples), --hypothesis-seed={seed}"
