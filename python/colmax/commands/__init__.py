"""Subcommands of the `colmax` command line, one module each."""
