"""The pay station service: a pure domain, its ports, the application on the loop thread, and the adapters."""
