//! necmail's integration tests: one binary, one module per domain.

mod support;

mod admin;
mod admin_campaigns;
mod admin_feeds;
mod admin_people;
mod browser;
mod campaign_cli;
mod campaigns;
mod claims;
mod cli;
mod comebacks;
mod deliverability;
mod deploy;
mod excerpts;
mod feed_addresses;
mod hostile_content;
mod images;
mod import;
mod inbound;
mod lists;
mod meetings;
mod report_corrections;
mod reports_cli;
mod reports_import;
mod scheduler;
mod self_service;
mod serve;
mod smtp;
mod sources;
mod sqlite_files;
mod subscribers;
mod tallies;
mod web;
