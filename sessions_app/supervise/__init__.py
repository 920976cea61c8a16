"""The supervisor pages: session list, timeline, dashboard, exports."""
