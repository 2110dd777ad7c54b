"""The pure domain: journey, help desk, tariff, faults, payments, records, events (no I/O, no threads, time as `now`)."""
