//! Scanning a text of any size in bounded memory, fed in chunks.
