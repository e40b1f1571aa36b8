"""Models: what a name means (names), loading it (loading), one adapter per family (families), the catalog."""
