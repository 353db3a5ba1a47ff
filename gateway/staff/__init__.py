"""Staff accounts: passwords, bearer tokens, browser sessions and the audit log (spec/http-api.md "Staff
routes", spec/operations.md)."""
