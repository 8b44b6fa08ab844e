"""Operations on a deployed stack: what the CLI and ``snapcdc local run`` both call."""
