"""Export: writing a model in other formats, each loaded back and checked, and its model card. Imports core.analysis, core.model, core.data and core.store."""
