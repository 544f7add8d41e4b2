"""`python -m lab ...` is the `lab` command."""

from .cli import main

main()
