"""The artifacts folder: its manifest, golden vectors, signature and trust, read and written."""
