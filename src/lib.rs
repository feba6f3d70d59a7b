//! depthagg: one honest, live picture of Bitcoin market depth across Binance, Coinbase, Kraken
//! and Bitfinex.
//!
//! The library holds everything; `main.rs` only parses the command line and runs a mode.
//! See `../shared/design.md` for the architecture.

pub mod aggregate;
pub mod bins;
pub mod book;
pub mod capture;
pub mod control;
pub mod decimal;
pub mod engine;
pub mod output;
pub mod sim;
pub mod tui;
pub mod types;
pub mod venue;
