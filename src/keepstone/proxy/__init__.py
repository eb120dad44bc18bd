"""Proxies: workers that claim queued job runs and execute them."""
