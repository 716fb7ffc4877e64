//! Test data: the people `vigie verify` invents to prove a deployment works end to end. Their
//! ids are UUIDs in a reserved range (`00000000-7e57-4da7-a000-` then 12 random hex digits:
//! "7e57" for test, "da7a" for data), which no UUIDv7 (time-ordered) and practically no random
//! UUIDv4 (2^-76) falls into, so each half can find and remove exactly what a check left
//! behind (`GET` / `DELETE /api/v1/test-data`) without touching anyone real.
use uuid::Uuid;

/// The text every test person's id starts with (lowercase, as ids are written).
pub const PREFIX: &str = "00000000-7e57-4da7-a000-";

/// The inclusive bounds of the range as UUIDs (for range scans over id columns).
pub const FIRST: Uuid = Uuid::from_u128(0x0000_0000_7e57_4da7_a000_0000_0000_0000);
/// The last id of the range.
pub const LAST: Uuid = Uuid::from_u128(0x0000_0000_7e57_4da7_a000_ffff_ffff_ffff);

/// Whether `user_id` is a test person (case-insensitive, as a UUID's text may be).
pub fn is_test_person(user_id: &str) -> bool {
    user_id.len() == 36 && user_id.get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX)) && Uuid::parse_str(user_id).is_ok()
}

/// A new test person's id: the reserved range with 48 random bits.
pub fn new_test_person() -> Uuid {
    let random = Uuid::new_v4().as_u128() & 0xffff_ffff_ffff;
    Uuid::from_u128(FIRST.as_u128() | random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_test_people_are_in_the_range_and_differ() {
        let (a, b) = (new_test_person(), new_test_person());
        assert_ne!(a, b);
        for id in [a, b, FIRST, LAST] {
            assert!(is_test_person(&id.to_string()), "{id}");
            assert!(is_test_person(&id.to_string().to_uppercase()), "{id}");
            assert!(id >= FIRST && id <= LAST);
        }
    }

    #[test]
    fn real_ids_are_not_test_people() {
        for id in [
            "01900000-0000-7000-8000-000000000007",
            "00000000-7e57-4da7-a001-000000000000",
            "00000000-7e57-4da7-a000-00000000000",
            "00000000-7e57-4da7-a000-00000000000g",
            "00000000-7e57-4da7-a000-0000000000000",
            "",
            "vigie-verify",
        ] {
            assert!(!is_test_person(id), "{id}");
        }
        assert!(!is_test_person(&Uuid::now_v7().to_string()));
    }
}
