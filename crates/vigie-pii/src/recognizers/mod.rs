//! The recognizers: each finds its candidates from a trigger the scanner hands it, validates
//! them, scores them with their context, and says where the scan resumes.
pub mod email;
pub mod ids;
pub mod ip;
pub mod numeric;
pub mod phone;
pub mod secrets;
