"""The configurations of a family: the matrix's single-layer cases, the default first, tied variants."""

import pytest

from comparisons.check import matrix


@pytest.mark.parametrize("family", ["Conv2d", "MaxPool2d", "AvgPool2d", "Linear", "ReLU", "Flatten"])
def test_default_first(family):
    configs = matrix.configurations(family)
    default = matrix.default_config(configs)
    assert default is configs[0] and not default.case.single
    assert all(matrix.family_of(c.case) == family for c in configs)


def test_max_pool_has_tied_variants_and_max_cases_keeps_the_default():
    configs = matrix.configurations("MaxPool2d")
    assert any(c.ties for c in configs) and len({c.id for c in configs}) == len(configs)
    few = matrix.configurations("MaxPool2d", max_cases=4)
    assert len(few) == 4 and few[0] == configs[0]


def test_unknown_and_unsupported_families():
    with pytest.raises(ValueError, match="layer kind must be one of"):
        matrix.configurations("Conv3d")
    with pytest.raises(ValueError, match="random mask"):
        matrix.configurations("Dropout")
