"""The pay station service: a pure domain, the ports it is driven through, the application on the loop thread, and its adapters."""
