"""Test support shared by the suites (harnesses, fakes, waits)."""
