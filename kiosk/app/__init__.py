"""The application on the loop thread: the loop, effect executors, the fault board, payments, staff commands and start-up recovery; it talks to ports only."""
