"""exportkit: export a PyTorch model to deployable formats, prove each one matches, and measure its speed."""

__version__ = "0.1.0"
