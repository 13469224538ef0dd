"""Performance-predictor heads, ranking metrics, and fitting a predictor on existing results."""
