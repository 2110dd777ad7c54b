"""Payment methods: one folder per kind of device, each implementing kiosk.ports.PaymentMethod."""
