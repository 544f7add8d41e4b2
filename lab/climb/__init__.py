"""`lab climb`: the ladder climbed in order (docs/guide.md), step by step, until a rung meets the target.

decide.py  next_step(situation) -> Decision: the pure decision at each rung (and the rule for
           "meets the target significantly")
run.py     climb(lab, task, ...) -> ClimbResult: runs the steps through the evaluation runner
           and the trainer, records the path, asks the advisor
estimate.py how long each step should take here (answers and training still to do)
record.py  the `climbs` table: a climb's path, so a rerun continues it and the report draws it
"""

from .decide import RULE, ArmResult, Decision, Situation, next_step  # noqa: F401
from .run import ClimbResult, climb, path_text, plan_text  # noqa: F401
