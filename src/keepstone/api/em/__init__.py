"""The Veeam Backup Enterprise Manager dialect: XML (or JSON on request), logon sessions, tasks."""
