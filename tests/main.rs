//! The one integration test binary: real redis-server, real HTTP, real browser.

mod harness;
mod config;
mod desk;
mod store;
mod triage;
mod webchat;
