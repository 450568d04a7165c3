"""Recorded SellOrderWorkflow histories (JSON) and the recorder that regenerates them."""
