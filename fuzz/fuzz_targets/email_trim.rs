#![no_main]

// Every target includes the shared checks and uses one of them.
#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::email_trim(data));
