"""The worker process: configuration, connection and registration of workflows and activities."""
