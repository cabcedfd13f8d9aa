"""Models: custom layers, architectures, recipes, model/dataset compatibility and .keras loading. Imports core.data and core.store."""
