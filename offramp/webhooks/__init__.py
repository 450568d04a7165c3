"""The webhook receiver: one signed route per provider, each event a hint that wakes its order's
workflow with `poll_now` (README "Webhook receiver"). `offramp webhooks` runs it."""
