"""The seams: the registries of learners and adversaries fill themselves from their packages."""

import pytest

from jarob.adversaries import ADVERSARIES
from jarob.config import group_options
from jarob.learners import LEARNERS


def test_registries_know_every_method():
    assert {"qmix", "vdn"} <= set(LEARNERS.names())
    assert {"none", "rn", "fgsm", "pgd", "paad", "atsa", "rap", "atla"} <= set(ADVERSARIES.names())
    assert ADVERSARIES.get("fgsm").channel == "observation" and ADVERSARIES.get("atsa").learned
    with pytest.raises(KeyError, match="allowed: .*qmix"):
        LEARNERS.get("nope")
    # a group's options are its YAML files that name a registered method (and every built-in has one)
    assert {"qmix", "vdn"} <= set(group_options("alg")) <= set(LEARNERS.names())
    assert {"none", "fgsm", "atsa", "atla"} <= set(group_options("adv")) <= set(ADVERSARIES.names())
