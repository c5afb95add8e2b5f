#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| aerobook_server::fuzzing::configuration(bytes));
