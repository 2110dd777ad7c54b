"""Storage adapter: the SQLite store (peewee) behind the Store port, and its stand-in while no database is usable."""
