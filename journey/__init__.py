"""journey: policy/critic debates that grow reasoning trees and long-thought training data."""

__version__ = "0.1.0"

__all__ = ["__version__"]
