//! Generated test data: labelled sentences holding sensitive data, negative texts, and bench corpora.
