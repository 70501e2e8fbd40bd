//! Operations: the health check, Prometheus metrics, and the stylesheet.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::pages::PageError;
use crate::campaigns::DeliveryState;
use crate::subscribers::SuppressionReason;

/// The pages' stylesheet, compiled in.
const STYLESHEET: &str = include_str!("../../templates/pages/style.css");

/// The states of deliveries still to be sent.
const QUEUED_STATES: [DeliveryState; 3] = [
    DeliveryState::Queued,
    DeliveryState::Deferred,
    DeliveryState::Sending,
];

pub(super) async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// 200 when the database answers, 503 when it does not.
pub(super) async fn healthz(State(state): State<Shared>) -> Response {
    match state.health.ping().await {
        Ok(()) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "ok\n",
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// A label value in the Prometheus text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn series_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Prometheus text format.
#[tracing::instrument(name = "metrics", skip_all)]
pub(super) async fn metrics(State(state): State<Shared>) -> Result<Response, PageError> {
    let counts = state.totals.totals().await?;
    let lists = state.lists.lists().await?;
    let mut out = String::with_capacity(2048);

    let delivered = |s: DeliveryState| {
        counts
            .deliveries
            .iter()
            .filter(|(state, _)| *state == s)
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    series_header(
        &mut out,
        "necmail_deliveries",
        "Deliveries of every campaign, by state.",
    );
    for s in DeliveryState::ALL {
        let _ = writeln!(out, "necmail_deliveries{{state=\"{s}\"}} {}", delivered(*s));
    }
    series_header(
        &mut out,
        "necmail_queue_depth",
        "Deliveries still to be sent: queued, deferred or being sent.",
    );
    let depth: i64 = QUEUED_STATES.iter().map(|s| delivered(*s)).sum();
    let _ = writeln!(out, "necmail_queue_depth {depth}");

    series_header(
        &mut out,
        "necmail_subscriptions",
        "Subscriptions by list and status (blocklisted: subscribers on the list who are blocklisted).",
    );
    for list in &lists {
        let c = list.subscribers;
        for (status, n) in [
            ("confirmed", c.confirmed),
            ("unconfirmed", c.unconfirmed),
            ("unsubscribed", c.unsubscribed),
            ("blocklisted", c.blocklisted),
        ] {
            let _ = writeln!(
                out,
                "necmail_subscriptions{{list=\"{}\",status=\"{status}\"}} {n}",
                label(list.slug.as_str())
            );
        }
    }

    series_header(
        &mut out,
        "necmail_suppressions",
        "Suppressed addresses by reason.",
    );
    for reason in SuppressionReason::ALL {
        let n: i64 = counts
            .suppressions
            .iter()
            .filter(|(r, _)| r == reason)
            .map(|(_, n)| n)
            .sum();
        let _ = writeln!(out, "necmail_suppressions{{reason=\"{reason}\"}} {n}");
    }

    match state.ticks.ticks().await {
        Ok(ticks) => {
            series_header(
                &mut out,
                "necmail_scheduler_last_tick_seconds",
                "When each schedule last ticked, in Unix seconds.",
            );
            for (name, at) in ticks {
                let _ = writeln!(
                    out,
                    "necmail_scheduler_last_tick_seconds{{schedule=\"{}\"}} {}",
                    label(&name),
                    at.timestamp()
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the scheduler's ticks are unavailable"),
    }

    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response())
}
