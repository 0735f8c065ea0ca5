//! UTC timestamps as the results store writes them: the crate's one clock formatter
//! ([`crate::clock`]), named where the experiment code looks for it.

pub use crate::clock::{dir_stamp, parse_rfc3339, rfc3339};
