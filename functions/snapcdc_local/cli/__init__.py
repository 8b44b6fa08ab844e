"""The ``snapcdc`` commands, one module per subcommand (``main`` is the argparse program)."""
