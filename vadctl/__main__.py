"""`python -m vadctl` runs the command line."""

from vadctl.cli import main

main()
