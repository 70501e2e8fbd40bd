//! Feed sources: RSS 2.0 and Atom, fetched politely and polled for new reports.
//!
//! PLACEHOLDER: being written (issue 3).
