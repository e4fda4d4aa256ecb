"""What the stages' reports share: intervals across seeds, markdown tables, durations, summaries, figure style."""
