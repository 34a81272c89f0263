"""One module per ``rlgru`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``, nothing else.

The module docstring's first line is the command's help text. ``rlgru.cli.COMMANDS`` lists the modules.
"""
