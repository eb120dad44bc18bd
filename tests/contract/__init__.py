"""Contract tests: Keepstone's JSON dialect against the vendor's OpenAPI specs v6, v7 and v8."""
