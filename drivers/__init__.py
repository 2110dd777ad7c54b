"""Device adapters: payment methods, GPIO (help button, LED, door); they import only kiosk.ports, kiosk.domain and kiosk.config."""
