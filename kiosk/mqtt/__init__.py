"""MQTT adapter: the wire contract, the paho client, the outbox publisher, the uplink and the staff commands' parsing."""
