//! Alerts: raised from rule matches (similarity folds repeats into occurrences of an open alert; a rule raising too many is paused), the workflow, comments, assignment, and their HTTP API.
