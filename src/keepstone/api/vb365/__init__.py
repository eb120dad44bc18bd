"""The Veeam Backup for Microsoft 365 dialect: JSON, bearer tokens, HAL links."""
