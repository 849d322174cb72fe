"""Sweep summaries rendered from job folders: the leaderboard, the Markdown table and the HTML report."""
