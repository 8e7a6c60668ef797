//! The one integration test binary: real redis-server, real HTTP, real browser.

mod browser;
mod channels;
mod config;
mod desk;
mod email;
mod harness;
mod learning;
mod mailservers;
mod reliability;
mod report;
mod slack_customers;
mod slack_desk;
mod store;
mod triage;
mod webchat;
