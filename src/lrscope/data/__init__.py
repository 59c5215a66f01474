"""Data: how batches are cycled, moved and sized (batching), scored into a loss (scoring), and
the built-in and user tasks (tasks/)."""
