//! The daemon: the web server, the scheduler and the delivery workers in
//! one tokio runtime.
