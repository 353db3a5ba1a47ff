"""Response codes shared by ISO 8583 (field 39) and the JSON API (`response_code`).

The table is iso8583.md "Response codes". One enum for both channels keeps them from drifting.
"""

import enum


class RC(enum.StrEnum):
    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    BILL_NOT_FOUND = "14"
    FORMAT_ERROR = "30"
    NOT_PAYABLE = "33"
    REVERSAL_NOT_PERMITTED = "57"
    ALREADY_PAID = "88"
    CUTOFF_IN_PROGRESS = "90"
    HOST_UNAVAILABLE = "91"
    DUPLICATE = "94"
    SYSTEM_ERROR = "96"


# Short messages for the JSON `message` field and for logs; they follow the "meaning" column of the
# spec's table, which is what bank integrators see in their ISO 8583 documentation.
_MESSAGES: dict[RC, str] = {
    RC.APPROVED: "approved",
    RC.DO_NOT_HONOUR: "do not honour",
    RC.INVALID_TRANSACTION: "invalid transaction",
    RC.INVALID_AMOUNT: "invalid amount",
    RC.BILL_NOT_FOUND: "bill not found",
    RC.FORMAT_ERROR: "format error",
    RC.NOT_PAYABLE: "bill not payable",
    RC.REVERSAL_NOT_PERMITTED: "reversal not permitted",
    RC.ALREADY_PAID: "already paid",
    RC.CUTOFF_IN_PROGRESS: "cut-off in progress",
    RC.HOST_UNAVAILABLE: "host unavailable",
    RC.DUPLICATE: "duplicate transmission",
    RC.SYSTEM_ERROR: "system malfunction",
}


def message(rc: "RC | str") -> str:
    """The short message for `rc`; accepts the plain two-character code too (e.g. from a stored row).

    An unknown code is a programming error, so it raises ValueError instead of inventing a message.
    """
    return _MESSAGES[RC(rc)]
