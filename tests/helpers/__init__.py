"""Helpers shared by the test modules: gateways and their configuration, database probes, HTTP clients and
answer checks, staff accounts, the OpenAPI conformance check.

Test modules import from here (and get fixtures from the conftest.py files); a test module never imports
another test module (tests/unit/test_test_layout.py keeps it so).
"""
