"""Help by voice: the intercom port's adapters (baresip through ctrl_tcp; a simulated agent)."""
