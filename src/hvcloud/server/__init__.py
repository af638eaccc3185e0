"""The management server: CloudStack-compatible API, cloud state in a database, agent management."""
