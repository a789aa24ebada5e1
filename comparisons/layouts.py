"""``comparisons.layouts`` is :mod:`comparisons.frameworks.layouts` (the layout conversions live with the
frameworks; this name stays importable for users and the README's examples)."""

import sys

from .frameworks import layouts

sys.modules[__name__] = layouts
