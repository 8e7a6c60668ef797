//! The one integration test binary: real redis-server, real HTTP, real browser.

mod archive;
mod archive_s3;
mod attachments;
mod browser;
mod cases;
mod channels;
mod cluster;
mod config;
mod desk;
mod desk_channels;
mod desk_reminders;
mod erasure;
mod fuzzing;
mod harness;
mod learning;
mod linked_contacts;
mod logging;
mod mailservers;
mod moto;
mod outbox_outage;
mod postfix;
mod processes;
mod proxy;
mod reliability;
mod replay;
mod report;
mod rolling;
mod servers;
mod shared_knowledge;
mod slack_buttons;
mod slack_desk;
mod soak;
mod store;
mod test_ca;
mod triage;
mod upload_quota;
mod webchat;
mod webchat_trust;
mod work;

// Each channel's own gateway-level tests, found in `connectors/<name>/tests/gateway.rs`.
include!(concat!(env!("OUT_DIR"), "/channel_tests.rs"));
