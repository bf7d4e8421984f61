"""docs/validate.md documents exactly the problem codes the validator has."""

from __future__ import annotations

import re
from pathlib import Path

from headwater.validation import CODES
from headwater.validation._codes import RESIDENCY_CODES

DOC = Path(__file__).parents[3] / "docs" / "validate.md"


def test_every_code_is_documented_with_its_severity_and_no_other() -> None:
    rows = re.findall(r"^\| (HW\d{3}) \| ([^|]+) \|", DOC.read_text(), flags=re.MULTILINE)
    documented = {code: severity.strip() for code, severity in rows}
    assert set(documented) == set(CODES)
    for code, info in CODES.items():
        if code in RESIDENCY_CODES:
            expected = "residency"
        elif info.usage:
            expected = "error (exit 2)"
        else:
            expected = info.severity
        assert documented[code] == expected, code
