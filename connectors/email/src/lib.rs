//! Email channel for Switchboard: IMAP in (IDLE, polling as fallback), SMTP out.

pub mod trim;
