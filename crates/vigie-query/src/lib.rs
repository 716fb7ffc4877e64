//! The pipe language (`../shared/QUERY.md`): one language for detection rules, event search and
//! dashboard widgets.
//!
//! - [`parse`] reads a query into an [`ast::Query`], with errors that give the line, the column
//!   and what was expected; printing a query (`Display`) gives text that parses back to the same
//!   tree.
//! - [`matcher::Matcher`] is the streaming back end's filter: compiled once, field paths
//!   resolved to slots.
//! - [`table`] runs the stages (`stats`, `where`, `sort`, `head`, `fields`) over events in
//!   memory, and [`window`] keeps the sliding-window state of a `stats … | where … in last D`
//!   rule, bounded and serialisable.
pub mod ast;
pub mod matcher;
pub mod parse;
pub mod print;
pub mod sigma;
pub mod sql;
pub mod sqlite;
pub mod table;
pub mod value;
pub mod window;

pub use ast::Query;
pub use parse::{ParseError, parse};
