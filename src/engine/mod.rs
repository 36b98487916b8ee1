//! The Rust engine: evcxr behind a small interface. The only module that knows evcxr.
