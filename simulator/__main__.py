"""`python -m botdrill.simulator` runs the `botdrill` command line."""

from ._cli import main

main()
