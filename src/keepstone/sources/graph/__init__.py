"""Microsoft Graph: endpoints, TLS, app-only tokens and the throttled HTTP client."""
