"""hlmm: a market maker for Hyperliquid perpetuals (incl. HIP-3 dexes)."""

__version__ = "0.1.0"
