//! Event consumers: progress bars, recap, JSON lines log.
