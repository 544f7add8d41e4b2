#!/usr/bin/env bash
# Prove the lab runs on Python 3.10 (pyproject.toml: requires-python >= 3.10).
#
#   scripts/check_py310.sh                 # build/reuse .venv-py310, compile, import, run the fast tests
#   scripts/check_py310.sh --find          # print the 3.10 interpreter it would use (exit 3: none;
#                                          # 2: $PY310 is not a 3.10)
#   scripts/check_py310.sh -k tomllib      # extra arguments go to pytest
#   PY310=/path/to/python3.10 scripts/check_py310.sh
#
# The interpreter: $PY310, else `python3.10` on PATH, else a pyenv 3.10 (~/.pyenv/versions/3.10.*).
# Into .venv-py310/ (cached: rebuilt only when the interpreter or the requirements below change) it
# installs the light dependencies that the foundation modules, tasks, task import, the store and the
# statistics need, with the specifiers pyproject.toml gives them (not torch, transformers or
# llama-cpp-python: minutes to install, and their own 3.10 support is their makers' to prove). Then:
#   1. python -m compileall lab scripts        3.11+ syntax (except*, PEP 695, ...) fails here;
#   2. imports of the foundation modules       tomllib's fallback to tomli is taken;
#   3. pytest on the tests that need none of the heavy packages ($PY310_TESTS to choose others).
# Bytecode goes to .venv-py310/pycache, never beside the sources. Exit 0 when all pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PY310_VENV:-$ROOT/.venv-py310}"
# The default tests: TOML parsing (config, task files, task import), the store's timestamps and
# migrations, the statistics on 3.10's numpy/scipy, the VRAM planner, the climb's decisions, jobs.
# (test_advisor, test_prompt_rung and test_bench_verdicts pass too, in a minute more.)
TESTS="${PY310_TESTS:-tests/test_config.py tests/test_tasks.py tests/test_task_import.py tests/test_store.py
  tests/test_stats.py tests/test_sample.py tests/test_vram.py tests/test_climb_decide.py tests/test_jobs.py}"
# Distributions taken from pyproject.toml's `dependencies` (with their specifiers) ...
FROM_PYPROJECT="pydantic tomli tomlkit click numpy pandas pyarrow sqlite-utils jsonschema psutil tqdm"
# ... and the rest: pytest (the `test` extra) and scipy (lab.evaluation.stats imports it; pyproject
# gets it only through sentence-transformers -> scikit-learn).
EXTRA_REQS=("pytest>=8" "scipy")

find_python() {
  local candidates=() c
  if [[ -n "${PY310:-}" ]]; then  # named: that one or nothing
    "$PY310" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1 \
      || { echo "check_py310: PY310=$PY310 is not a Python 3.10" >&2; return 2; }
    candidates+=("$PY310")
  fi
  command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
  for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10 /root/.pyenv/versions/3.10.*/bin/python3.10; do
    [[ -x "$c" ]] && candidates+=("$c")
  done
  for c in "${candidates[@]}"; do  # a pyenv shim may exist without a 3.10 behind it: ask each one
    if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
      "$c" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

if ! PY="$(find_python)"; then
  [[ -n "${PY310:-}" ]] && exit 2
  echo "check_py310: no Python 3.10 interpreter found (set PY310=/path/to/python3.10, put python3.10 on" \
       "PATH, or install one with pyenv)" >&2
  exit 3
fi
if [[ "${1:-}" == "--find" ]]; then
  echo "$PY"
  exit 0
fi

start=$(date +%s)
say() { echo "[check_py310 +$(( $(date +%s) - start ))s] $*" >&2; }
say "interpreter: $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"

# The requirements: pyproject's specifiers for the names above, read by the 3.10 interpreter itself
# (no tomllib on 3.10, so a line-level read of the dependencies array).
reqs_text="$("$PY" - "$ROOT/pyproject.toml" $FROM_PYPROJECT <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
deps = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
specs = {}
for line in deps.splitlines():
    m = re.match(r'\s*"([^"]+)"', line) or re.match(r"\s*'([^']+)'", line)
    if m:
        req = m.group(1)
        specs[re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower()] = req
missing = [n for n in sys.argv[2:] if n not in specs]
if missing:
    sys.exit(f"check_py310: pyproject.toml's dependencies no longer name {missing}: update FROM_PYPROJECT")
print("\n".join(specs[n] for n in sys.argv[2:]))
EOF
)"
mapfile -t REQS <<< "$reqs_text"
REQS+=("${EXTRA_REQS[@]}")

stamp="$(printf '%s\n' "$PY" "$("$PY" -VV)" "${REQS[@]}" | sha256sum | cut -c1-16)"
if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.stamp" 2>/dev/null)" == "$stamp" ]]; then
  say "reusing $VENV"
else
  say "building $VENV: ${REQS[*]}"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQS[@]}"
  echo "$stamp" > "$VENV/.stamp"
  say "built"
fi

export PYTHONPYCACHEPREFIX="$VENV/pycache" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

say "compileall lab scripts"
"$VENV/bin/python" -m compileall -q lab scripts  # -q: prints only what fails

say "importing the foundation modules"
"$VENV/bin/python" - <<'EOF'
import sys
assert sys.version_info[:2] == (3, 10), sys.version
import lab.config, lab.home, lab.gguf_meta, lab.migrations, lab.prompts, lab.model_pairs, lab.store
import lab.tasks, lab.task_import, lab.tuning.config, lab.tuning.vram
assert lab.config.tomllib.__name__ == "tomli", lab.config.tomllib  # the 3.10 fallback, really taken
EOF

say "pytest (not slow): $(echo $TESTS)"
# shellcheck disable=SC2086  # TESTS is a list of paths
"$VENV/bin/python" -m pytest $TESTS -q -p no:cacheprovider -m "not slow" "$@"
say "Python 3.10: all passed"
