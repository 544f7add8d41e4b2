"""The offline demo in one go: what a lab home needs so the Compare, Evaluate and Advisor tabs show
the whole ladder at once, planned with this machine's speeds and built resumably.

    steps = plan(lab)                  # [DemoStep(action, name, what, why, seconds, done, basis, ...)]
    result = prepare(lab)              # does the steps not done yet; Ctrl-C, rerun: it continues

The steps, cheapest first so a stopped run already shows something: the sample corpus's index;
a stored evaluation of each demo scenario (`steps.DEMO_SCENARIOS`) on its prompt (and RAG) arms; a demo adapter per
scenario (the existing trainer, resumed from its checkpoint; an adapter whose data, config and
base model match is reused, and one that does not match is never overwritten: the demo trains
`<scenario>-demo` beside it); then the tune arms joining the same stored evaluations.

Nothing is done twice: every step is recognised as done from the lab home itself (the index's
manifest, the adapter's manifest, the evaluation's rows), so a rerun, or `lab eval`/`lab train`
run by hand, counts. Each run is a `demo_runs` row in lab.db, updated as it goes: the app starts
`lab demo prepare` as a background process (`build.start_job`) and polls that row.
"""

from .build import PrepareResult, Progress, latest_run, prepare, start_job, stop_job  # noqa: F401
from .steps import (  # noqa: F401
    BASE_ARMS,
    CPU_STEPS,
    DEFAULT_LIMIT,
    TUNE_ARMS,
    DemoStep,
    adapter_plan,
    arms_for,
    describe,
    has_parts,
    needed,
    plan,
    scenarios,
    total_seconds,
)
