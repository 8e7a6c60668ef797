//! The one integration test binary: real redis-server, real HTTP, real browser.

mod attachments;
mod browser;
mod channels;
mod cluster;
mod config;
mod desk;
mod email;
mod fuzzing;
mod harness;
mod learning;
mod mailservers;
mod proxy;
mod reliability;
mod report;
mod servers;
mod slack_customers;
mod slack_desk;
mod soak;
mod store;
mod triage;
mod upload_quota;
mod webchat;
mod webchat_trust;
mod work;
