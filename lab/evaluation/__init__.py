"""Evaluation: the same held-out examples through every arm, scored, with honest statistics.

    run_id = run_eval(lab, "tickets", arms=["zero-shot", "few-shot", "rag"], limit=20)
    board = summarize(lab, run_id)
    print(board.to_text())

Modules: `runner` (resumable runs), `scorers`, `stats` (`compare`: exact McNemar
or sign-flip permutation tests, Clopper-Pearson intervals, Holm), `verdict` (meets / helped /
as good as, decided once), `rung_choice`, `costs`, `summary`
(the scoreboard), `probe` (the staleness probe), `sample` (which held-out examples a
limit scores), `retrieval_check` (retrieval alone: hit rate, recall@k, MRR per k, no
generation). How each arm answers is `lab.ladder`.
"""

from .retrieval_check import RetrievalCheck, check_retrieval  # noqa: F401
from .runner import EvalError, latest_run, run_eval  # noqa: F401
from .summary import Scoreboard, summarize  # noqa: F401
