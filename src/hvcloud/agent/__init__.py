"""hvcloud.agent."""
