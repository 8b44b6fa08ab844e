"""An embedded Athena: the pipeline's SQL executed on DuckDB (see ``engine``)."""
