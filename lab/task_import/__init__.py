"""Your own task from the file you already have: CSV, TSV, JSONL/JSON or Parquet -> <home>/tasks/NAME/.

    plan = plan_task("mail.csv", "mail")          # read, guess the columns, infer the format, split
    print(plan.summary())                          # counts, labels, warnings, the leakage check
    write_task(plan, home)                         # tasks/mail/{task.toml,train,eval,fewshot.jsonl}

JSONL/JSON may hold plain records, OpenAI chat `messages`, prompt/completion or Alpaca rows.
The output format follows from the outputs: `label` when they come from a small set that
repeats, `json` when every one is a JSON object (a schema is derived from them), `text`
otherwise; scorers and the primary metric follow from the format, and `teaches` (knowledge or
behaviour, the climb's fork) from the format and the outputs' lengths (`infer_teaches`). The
split is seeded, stratified for labels, with a few-shot pool that covers every label; a training example whose
normalised input also appears in the held-out set is removed (leakage inflates a tuned arm's
score). Every bad input is a TaskImportError naming the file and the row, and nothing is
written until everything is checked: the folder is built aside and renamed into place. The
error keeps the file, the row and the problem apart, and a fix a face words in its own controls
is a subclass carrying what it needs (TaskExistsError, ColumnError, EvalSizeError, CorpusError):
str() is the command line's (--force...), the app names the uploaded file and its own boxes.

The columns `gold_doc` and `aliases` (read.KEPT_COLUMNS) are kept in the written JSONL files, so
recall@k, contains_fact's aliases and the RAG failure split work for a task of your own; a corpus
can be attached (`corpus=`: a name, or a folder copied into the home's corpora/), and other
instructions to try written beside the instruction (`instructions=`; `set_instructions` changes
them later, in place, comments kept; `edit.py`). A text task is also written with `judge =
"pairwise"` and a rubric (`rubric=`, default `DEFAULT_RUBRIC`: what a good answer is, for blind
pairwise rating) as a multi-line string; `set_rubric` changes it later, in place, the hash kept.

`plan.py` decides (`plan_task`: the split, the leakage check, the kept columns, the corpus, the
instructions); `write.py` writes (`write_task`: task.toml, the JSONL files, the corpus copy, put in
place all or nothing).
"""

from __future__ import annotations

from .edit import BuiltinTaskError, instructions_note, is_builtin, set_instructions, set_rubric
from .infer import DEFAULT_RUBRIC, default_judge, default_rubric
from .plan import (
    FORMATS,
    TEACHES,
    CorpusError,
    EvalSizeError,
    InstructionsError,
    TaskPlan,
    check_instructions,
    clean_rubric,
    default_instruction,
    derive_schema,
    eval_count,
    infer_format,
    infer_teaches,
    leakage,
    normalise,
    parse_eval_size,
    plan_task,
    remove_leaks,
    split,
)
from .read import (
    FILE_FORMATS,
    KEPT_COLUMNS,
    ColumnError,
    Table,
    TaskImportError,
    guess_columns,
    pick_columns,
    preview,
    read_table,
)
from .write import TaskExistsError, check_name, import_task, task_toml, training_file, write_task

__all__ = [
    "training_file",
    "DEFAULT_RUBRIC",
    "FORMATS",
    "FILE_FORMATS",
    "KEPT_COLUMNS",
    "TEACHES",
    "BuiltinTaskError",
    "ColumnError",
    "CorpusError",
    "EvalSizeError",
    "InstructionsError",
    "Table",
    "TaskExistsError",
    "TaskImportError",
    "TaskPlan",
    "check_instructions",
    "check_name",
    "clean_rubric",
    "default_instruction",
    "default_judge",
    "default_rubric",
    "derive_schema",
    "eval_count",
    "guess_columns",
    "import_task",
    "infer_format",
    "infer_teaches",
    "instructions_note",
    "is_builtin",
    "leakage",
    "normalise",
    "parse_eval_size",
    "pick_columns",
    "plan_task",
    "preview",
    "read_table",
    "remove_leaks",
    "set_instructions",
    "set_rubric",
    "split",
    "task_toml",
    "write_task",
]
