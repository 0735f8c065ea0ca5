//! Variable layers and precedence, in one place.
