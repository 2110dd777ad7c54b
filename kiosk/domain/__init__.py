"""The pure domain: the parker's journey, the help desk, the tariff, faults, payments, records, events and effects (no I/O, no threads, time only as `now`)."""
