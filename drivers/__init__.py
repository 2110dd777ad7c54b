"""Device adapters: payment methods and GPIO (help button, LED, door), importing only ports, domain and config."""
