"""The schedule study: its plan, the recipe from a range test to a suite, the run, the results
store (store/) and the statistics read from it (stats/)."""
