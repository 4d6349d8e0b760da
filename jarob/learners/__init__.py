"""Team learners (one module per family, each registered in `LEARNERS` with its own config) and
the pieces they share. `make(cfg, env)` builds the learner a config names."""

from jarob.learners.base import LEARNERS, TeamLearner, make

__all__ = ["LEARNERS", "TeamLearner", "make"]
