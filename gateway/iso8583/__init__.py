"""ISO 8583 channel (spec/iso8583.md): codec, framing, MAC, field 62 profiles, and the server."""
