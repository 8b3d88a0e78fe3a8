"""Subcommands of ``snn-sac-ros``: each module has ``add_arguments(parser)`` and ``run(args) -> dict``."""
