"""A strict fake of Microsoft Graph and the Microsoft identity platform's token endpoint.

It refuses what the real services refuse (graph.md §1.1, §2, §6.2), so a connector that passes
against it has been held to Microsoft's documented rules. Nothing here is imported by `src/`.
"""
