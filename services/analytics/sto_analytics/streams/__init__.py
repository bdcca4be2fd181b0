"""The faust-streaming side of analytics: the app, its tables and its agents."""
