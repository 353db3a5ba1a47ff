"""The one exception the domain raises for malformed input.

Every parser in this package raises `FormatError` for input that a bank (or an import file) got
wrong, so the protocol layers can map it to RC 30 without knowing which parser failed. It is a
`ValueError` so that generic code that only knows "bad value" still catches it.
"""


class FormatError(ValueError):
    """Input for `field` is malformed; `reason` says how, in plain English."""

    def __init__(self, field: str, reason: str) -> None:
        # `field` names the logical field (nop, tax_year, amount, ...) rather than an ISO field
        # number, because the same parsers serve ISO 8583, JSON and CSV import.
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        # Spelled out so the message stays stable even if args are replaced by a subclass.
        return f"{self.field}: {self.reason}"
