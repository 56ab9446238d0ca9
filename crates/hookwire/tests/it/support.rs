//! The shared harness lives in `hookwire::testing`.

pub use hookwire::testing::*;
