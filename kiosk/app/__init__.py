"""The application on the loop thread: loop, effects, fault board, payments, staff commands, recovery (over ports)."""
