"""How many examples a fuzz test draws, and the per-layer tally ``make fuzz`` prints.

Under the suite's ordinary profiles (``default``, ``quick``: ``make test``) each fuzz test draws the
small number given to :func:`examples`, so that the whole ``tests/fuzz`` folder stays within about a
minute of one core; under the ``fuzz`` profile (``make fuzz``, registered in the root ``conftest.py``
with ``CNNREF_FUZZ_EXAMPLES`` examples) every test draws the profile's number.

:func:`tally` counts, per layer, the examples tried and the failing ones (a failing example and every
failing shrink of it count: a clean run shows 0); ``tests/fuzz/conftest.py`` ships the counts of each
test in its report, so they add up across ``pytest-xdist`` workers, and prints the summary.
"""

from __future__ import annotations

import contextlib
from collections import Counter

from hypothesis import settings

FUZZ_PROFILE = "fuzz"
TALLY_KEY = "fuzz_tally"

tried: Counter = Counter()
failed: Counter = Counter()


def examples(bounded: int) -> settings:
    """``@examples(n)``: ``n`` examples (at most the loaded profile's count), or the ``fuzz`` profile's count."""
    if settings.get_current_profile_name() == FUZZ_PROFILE:
        return settings()
    return settings(max_examples=min(bounded, settings.default.max_examples))


@contextlib.contextmanager
def tally(layer: str):
    """Count one example of ``layer``, and a failure when the block raises."""
    tried[layer] += 1
    try:
        yield
    except BaseException:
        failed[layer] += 1
        raise
