//! Untrusted input: a CSV file sent to `POST /api/v1/people/import`. Read and checked (every
//! row valid, or every problem reported with its line), never a panic; a file that passes
//! holds no more people than it has lines (ended by \n, \r or \r\n).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("a date");
    match vigie_xdr::people::check_csv(data, today) {
        // A line ends at \n, \r or \r\n (the csv crate's rule).
        Ok(n) => assert!(n <= data.iter().filter(|b| matches!(**b, b'\n' | b'\r')).count() + 1, "{n} people from fewer lines"),
        Err(problems) => assert!(!problems.is_empty(), "a refusal names its problems"),
    }
});
