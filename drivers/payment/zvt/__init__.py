"""ZVT card terminal protocol: serial link, APDU codec, ECR command sequences and a PT simulator."""
