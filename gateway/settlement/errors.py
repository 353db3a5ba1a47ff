"""Errors of settlement, export and reconciliation."""
from __future__ import annotations


class SettlementError(Exception):
    """A close that may not or did not happen (cut-off not passed, money not conserved)."""


class ReconFileError(Exception):
    """The bank's reconciliation file is unusable: the message names file, line and column."""
