"""The agents' console: a terminal UI for help-desk agents and maintenance crews, over the station's MQTT contract."""
