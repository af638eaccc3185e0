"""Managers holding the server's logic: resources, catalog, and the AgentManager boundary."""
