"""Business logic: typed, keyword-only functions named <thing>_<action>."""
