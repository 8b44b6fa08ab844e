"""The Athena SQL: the templates (``templates/``, i.e. the top-level ``sql/``) and their API."""
