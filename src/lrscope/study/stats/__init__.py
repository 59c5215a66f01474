"""Statistics over a study's stored trials: the leaderboard and its intervals and paired tests."""
