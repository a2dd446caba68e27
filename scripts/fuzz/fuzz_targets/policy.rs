//! libFuzzer target `policy`: bytes into `triage::fuzzing::policy` (see src/http/fuzzing.rs); a panic,
//! an overflow or an allocation past `-rss_limit_mb` is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| triage::fuzzing::policy(data));
