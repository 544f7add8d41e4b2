"""`python -m lab.cli ...` is the `lab` command."""

from . import main

main()
