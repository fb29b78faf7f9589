"""`python -m vadctl` runs the command line."""

from vadctl.cli import main

if __name__ == "__main__":  # worker processes (spawn) import this module without running the CLI
    main()
