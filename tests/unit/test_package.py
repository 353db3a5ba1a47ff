"""The domain package is pure: stdlib only, no I/O, no asyncio, nothing else from the project."""

import ast
import pathlib

import gateway.domain as domain

# Standard library modules without I/O (json and hashlib: the canonical bytes and codes of proofs).
ALLOWED = {"datetime", "decimal", "zoneinfo", "enum", "dataclasses", "collections", "typing", "__future__",
           "base64", "hashlib", "json", "unicodedata", "re"}
PUBLIC = {
    "FormatError", "RC", "message", "Tax", "BillStatus", "Channel", "other_unpaid_years", "pbb_bill_key",
    "parse_nop", "display_nop", "nop_parts", "in_region", "parse_tax_year", "mod97_check", "mod97_valid",
    "parse_registration", "make_registration", "make_ntpd", "parse_ntpd", "ntpd_tax", "round_half_up",
    "parse_amount", "PenaltyPeriod", "PenaltyPolicy", "DEFAULT_PBB_POLICY", "months_late", "Penalty",
    "pbb_penalty", "local_now", "business_date", "cutoff_moment", "cutoff_passed", "parse_cutoff",
}


def test_public_names_are_re_exported():
    assert set(domain.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(domain, name) is not None


def test_imports_only_stdlib_and_itself():
    package_dir = pathlib.Path(domain.__file__).parent
    for path in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:  # relative: inside gateway.domain
                    assert node.level == 1, path
                    continue
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= ALLOWED, f"{path.name} imports {roots - ALLOWED}"
