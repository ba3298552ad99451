"""fbundle: package source-code agents for Microsoft Foundry Agent Service."""

__version__ = "0.1.0"
