"""GRU-vs-LSTM benchmark: suites of runs over tasks x cores x seeds, their statistics and reports."""
