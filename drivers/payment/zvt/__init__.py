"""ZVT card terminal: serial link, APDU codec, ECR sequences, result codes in the station's words, a PT simulator."""
