"""Check your own layer: the reference's case matrix run through any implementation (``cnnref check``).

Modules: :mod:`.targets` (TARGET strings to objects), :mod:`.styles` (the class protocol and the attribute
mapping), :mod:`.cs231n` and :mod:`.tutorial` (two more styles), :mod:`.matrix` (the configurations of a
family), :mod:`.run` (one configuration through target, reference and frameworks), :mod:`.pitfalls` (known
mistakes, planted and recognised), :mod:`.shrink` (the smallest failing configuration), :mod:`.report`,
:mod:`.conformance` (:func:`check_layer`, :func:`assert_layer_conforms`), :mod:`.command` (the CLI),
:mod:`.plugin` (pytest).
"""

from .conformance import assert_layer_conforms, check_layer
from .report import Failure, Report
from .styles import NotCovered

__all__ = ["Failure", "NotCovered", "Report", "assert_layer_conforms", "check_layer"]
