"""scikit-learn-style estimators on series tables."""
