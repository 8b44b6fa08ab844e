"""One module per handler in ``snapcdc.handlers``, named alike: the logic, in plain functions."""
