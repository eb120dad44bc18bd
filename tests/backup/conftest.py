"""The backup tests' fixtures live in ``tests/local_org.py`` so other folders can import them."""

from tests.local_org import api, backup_proxy, org_job, organization

__all__ = ["api", "backup_proxy", "org_job", "organization"]
