"""RestAPI.xsd, the vendor's schema of the Enterprise Manager dialect, read once per process.

Both the request validator (``xml``) and the JSON form (``json_form``) are derived from it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

NS = "http://www.veeam.com/ent/v1.0"
XSD = "http://www.w3.org/2001/XMLSchema"
SCHEMA_PATH = Path(__file__).with_name("RestAPI.xsd")


@cache
def schema_document() -> etree._ElementTree:
    return etree.parse(str(SCHEMA_PATH))
