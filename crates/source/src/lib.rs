//! Log sources: files followed like `tail -F`, with rotation detection and persisted positions.
