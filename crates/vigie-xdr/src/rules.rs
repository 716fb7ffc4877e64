//! Detection rules: their HTTP API (create, read, list, update, delete, enable), the default rules installed in every new space, statistics, history and Sigma export.
