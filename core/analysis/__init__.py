"""What a trained model says: inference, metrics, activations, embeddings, explanations, run comparison. Imports core.model, core.data and core.store."""
