"""The AWS adapters: boto3 clients, the registry table, the per-table lock, Athena result files."""
