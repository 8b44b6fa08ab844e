"""What the pipeline knows about its data: the export contract, settings, limits, errors, events."""
