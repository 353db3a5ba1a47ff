"""The service kernel every use case shares: the context, typed requests and results, the unit of work."""
