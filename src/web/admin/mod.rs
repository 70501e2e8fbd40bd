//! The web admin: pages under `/admin` for the representative's office, on
//! a listener of its own (NECMAIL_ADMIN_ADDR) or beside the public pages.
//!
//! Every page but sign-in and setting a password needs a session (see
//! `session.rs`); every form carries the session's CSRF token; the pages of
//! accounts, settings and the audit log need an owner. Every action is
//! written to the audit log. No page needs JavaScript, and the pages are
//! served under the same strict Content-Security-Policy as the public ones.
//!
//! Routes:
//! - `GET|POST /admin/login`, `POST /admin/logout`, `POST /admin/logout/everywhere`
//! - `GET|POST /admin/set-password/{token}` (the one-time link)
//! - `GET /admin` (the dashboard)
//! - `GET /admin/account`, `POST /admin/account/password`,
//!   `POST /admin/account/totp`, `POST /admin/account/totp/off`
//! - `GET /admin/reports`, `GET|POST /admin/reports/new`, `GET|POST
//!   /admin/reports/{id}` (edit, preview on save), `GET
//!   /admin/reports/{id}/preview/{member|councillor}`, `POST /admin/reports/{id}/delete`
//! - `GET /admin/campaigns` (`?before=ID` pages), `GET|POST /admin/campaigns/new`,
//!   `GET /admin/campaigns/{id}` (`?state=&q=&after=` page its recipients),
//!   `POST /admin/campaigns/{id}/test`; owner: `POST
//!   /admin/campaigns/{id}/{approve|pause|resume|cancel|retry}`
//! - owner: `GET|POST /admin/accounts`, `POST /admin/accounts/{id}/reset`,
//!   `POST /admin/accounts/{id}/remove`, `POST /admin/settings`, `GET /admin/audit`
//! - owner: `GET|POST /admin/subscribers` (search, add), `GET
//!   /admin/subscribers/export`, `GET /admin/subscribers/{id}`, `POST
//!   /admin/subscribers/{id}/{edit|subscribe|unsubscribe|block|unblock|erase}`
//! - owner: `GET /admin/subscribers/import`, `POST /admin/subscribers/upload`
//!   (on routes of its own: see [`upload_routes`]), `GET
//!   /admin/subscribers/import/{token}`,
//!   `GET /admin/subscribers/import/{token}/rejects.csv`
//! - owner: `GET|POST /admin/lists`, `POST /admin/lists/{slug}/rename`
//! - owner: `GET|POST /admin/suppressions`, `POST /admin/suppressions/remove`,
//!   `GET /admin/bounces`, `GET /admin/events`
//! - owner: `GET|POST /admin/sources` (list, add), `POST /admin/sources/poll`,
//!   `POST /admin/sources/{id}/remove`
//! - `GET|POST /admin/meetings` (list, add), `POST /admin/meetings/import`
//!   (an iCalendar upload, on the upload routes), `POST
//!   /admin/meetings/{date}/{link|unlink|remove}`
//! - `POST /admin/reports/upload` (a Markdown, text or HTML file, on the
//!   upload routes), `POST /admin/reports/fetch` (a page's or feed's URL)
//! - `GET /admin/static/admin.css`

mod account;
mod accounts;
mod campaigns;
mod dashboard;
mod feedback;
mod import;
mod lists;
mod meetings;
mod pages;
mod reports;
mod session;
mod sources;
mod subscribers;

pub(super) use import::{ImportJobs, run_imports};

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use super::Shared;

/// The web admin's routes.
pub(super) fn routes(state: &Shared) -> Router<Shared> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/", get(dashboard::show))
        .route(
            "/admin/login",
            get(session::login_page).post(session::login),
        )
        .route("/admin/logout", post(session::logout))
        .route("/admin/logout/everywhere", post(session::logout_everywhere))
        .route(
            "/admin/set-password/{token}",
            get(session::set_password_page).post(session::set_password),
        )
        .route("/admin/account", get(account::show))
        .route("/admin/account/password", post(account::change_password))
        .route("/admin/account/totp", post(account::totp_on))
        .route("/admin/account/totp/off", post(account::totp_off))
        .route("/admin/reports", get(reports::list))
        .route(
            "/admin/reports/new",
            get(reports::new_page).post(reports::create),
        )
        .route(
            "/admin/reports/{id}",
            get(reports::edit_page).post(reports::save),
        )
        .route("/admin/reports/fetch", post(reports::fetch))
        .route("/admin/reports/{id}/preview/{role}", get(reports::preview))
        .route("/admin/reports/{id}/delete", post(reports::delete))
        .route("/admin/campaigns", get(campaigns::list))
        .route(
            "/admin/campaigns/new",
            get(campaigns::new_page).post(campaigns::create),
        )
        .route("/admin/campaigns/{id}", get(campaigns::show))
        .route("/admin/campaigns/{id}/test", post(campaigns::test))
        .route("/admin/campaigns/{id}/approve", post(campaigns::approve))
        .route("/admin/campaigns/{id}/pause", post(campaigns::pause))
        .route("/admin/campaigns/{id}/resume", post(campaigns::resume))
        .route("/admin/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/admin/campaigns/{id}/retry", post(campaigns::retry))
        .route("/admin/accounts", get(accounts::list).post(accounts::add))
        .route("/admin/accounts/{id}/reset", post(accounts::reset))
        .route("/admin/accounts/{id}/remove", post(accounts::remove))
        .route("/admin/settings", post(accounts::settings))
        .route("/admin/audit", get(accounts::audit_log))
        .route(
            "/admin/subscribers",
            get(subscribers::search).post(subscribers::add),
        )
        .route("/admin/subscribers/export", get(subscribers::export))
        .route("/admin/subscribers/import", get(import::upload_page))
        .route("/admin/subscribers/import/{token}", get(import::job_page))
        .route(
            "/admin/subscribers/import/{token}/rejects.csv",
            get(import::rejects),
        )
        .route("/admin/subscribers/{id}", get(subscribers::person))
        .route("/admin/subscribers/{id}/{action}", post(subscribers::act))
        .route("/admin/lists", get(lists::list).post(lists::add))
        .route("/admin/lists/{slug}/rename", post(lists::rename))
        .route(
            "/admin/suppressions",
            get(feedback::suppressions).post(feedback::suppress),
        )
        .route("/admin/suppressions/remove", post(feedback::unsuppress))
        .route("/admin/bounces", get(feedback::bounces))
        .route("/admin/events", get(feedback::events))
        .route("/admin/sources", get(sources::list).post(sources::add))
        .route("/admin/sources/poll", post(sources::poll))
        .route("/admin/sources/{id}/remove", post(sources::remove))
        .route("/admin/meetings", get(meetings::list).post(meetings::add))
        .route("/admin/meetings/{date}/link", post(meetings::link))
        .route("/admin/meetings/{date}/unlink", post(meetings::unlink))
        .route("/admin/meetings/{date}/remove", post(meetings::remove))
        .route("/admin/static/admin.css", get(pages::stylesheet))
        .route_layer(from_fn_with_state(state.clone(), pages::admin_errors))
}

/// The uploads, up to NECMAIL_ADMIN_UPLOAD_MAX_BYTES, within the request's
/// time limit: the CSV, whose body is streamed to disk rather than read into
/// memory first as the other pages' are, and a report's file and a
/// calendar, read into memory up to their own limits.
pub(super) fn upload_routes(state: &Shared) -> Router<Shared> {
    Router::new()
        .route("/admin/subscribers/upload", post(import::upload))
        .route("/admin/reports/upload", post(reports::upload))
        .route("/admin/meetings/import", post(meetings::import))
        .route_layer(from_fn_with_state(state.clone(), pages::admin_errors))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.admin_upload_max_bytes,
        ))
}
