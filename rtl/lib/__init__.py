"""Building blocks: block RAM and ROM, multipliers, queues, credits, inboxes, pipeline stages."""
