"""ZVT card terminal protocol: serial link, APDU codec, ECR command sequences, result codes in the station's words and a PT simulator."""
