//! The one integration test binary: real redis-server, real HTTP, real browser.

mod harness;
mod browser;
mod config;
mod desk;
mod store;
mod triage;
mod webchat;
