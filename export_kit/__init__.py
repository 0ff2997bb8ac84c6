"""exportkit: export a PyTorch model to deployable formats, prove each one matches, and measure its speed.

``build``, ``verify`` and ``bench`` are imported on first use, so importing the package (and ``exportkit
--help``) stays fast.
"""

__version__ = "0.1.0"
__all__ = ["bench", "build", "verify"]


def __getattr__(name: str):
    if name in __all__:
        from export_kit import api

        return getattr(api, name)
    raise AttributeError(f"module 'export_kit' has no attribute {name!r}")
