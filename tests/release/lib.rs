//! Empty: this package exists for its test, `profiles.rs`.
