//! Making a campaign an admin asks for, from the command line or the web
//! admin, with the checks both make first: a one-line subject, no second
//! sending of a report to a list, no excerpt sent by mistake.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::{Campaign, CampaignState, CampaignStore, NewCampaign};
use crate::error::StoreError;
use crate::lists::ListSlug;
use crate::reports::ReportStore;

/// The longest subject a campaign may have, in characters.
pub const MAX_SUBJECT: usize = 200;

/// Why a campaign was not made. The command line and the web admin each
/// add how to go ahead all the same.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the subject must be one line of at most {MAX_SUBJECT} characters")]
    Subject,
    /// An earlier campaign of the report sent it to one of the lists, or is
    /// sending it: people would get it twice.
    #[error("report {slug} went to {lists} in campaign {campaign} ({state})")]
    Repeat {
        slug: String,
        lists: String,
        campaign: i64,
        state: CampaignState,
    },
    /// The report (this slug) is only an excerpt of its post: see
    /// [`super::excerpt_refusal`].
    #[error("report {0} is only an excerpt of its post")]
    Excerpt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the campaign `new` asks for, its subject trimmed (an empty one is
/// none), after the checks: with `again`, it may send the report to a list
/// that an earlier campaign sent it to.
pub async fn create(
    reports: &dyn ReportStore,
    campaigns: &dyn CampaignStore,
    mut new: NewCampaign,
    again: bool,
) -> Result<Campaign, CreateError> {
    new.subject = new
        .subject
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if new
        .subject
        .as_deref()
        .is_some_and(|s| s.chars().any(char::is_control) || s.chars().count() > MAX_SUBJECT)
    {
        return Err(CreateError::Subject);
    }
    let report = reports.report(&new.report).await?;
    if !again {
        refuse_a_repeat(campaigns, report.id, &report.slug, &new.lists).await?;
    }
    if report.excerpt && !new.allow_excerpt {
        return Err(CreateError::Excerpt(report.slug));
    }
    Ok(campaigns.create_campaign(&new).await?)
}

/// Refuses a campaign of report `id` to a list that an earlier campaign of
/// the same report has sent to, or is sending to. (One paused before it
/// ever started, for want of recipients, sent nothing.)
async fn refuse_a_repeat(
    campaigns: &dyn CampaignStore,
    id: i64,
    slug: &str,
    lists: &[ListSlug],
) -> Result<(), CreateError> {
    let earlier = campaigns.campaigns().await?.into_iter().find(|c| {
        c.report_id == id
            && c.started_at.is_some()
            && matches!(
                c.state,
                CampaignState::Sending | CampaignState::Paused | CampaignState::Done
            )
            && c.lists.iter().any(|l| lists.contains(l))
    });
    match earlier {
        Some(c) => Err(CreateError::Repeat {
            slug: slug.to_owned(),
            lists: c
                .lists
                .iter()
                .map(ListSlug::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            campaign: c.id,
            state: c.state,
        }),
        None => Ok(()),
    }
}

/// Parses a start time: local time in `tz`, "YYYY-MM-DD HH:MM" (or with a
/// `T`, as a browser's date and time field sends it), or RFC 3339.
pub fn parse_at(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
        .ok_or_else(|| format!("{text:?} is not a time like \"2026-12-01 09:00\""))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{text:?} does not exist in {tz} (a clock change skips it)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_is_read_as_typed_or_as_a_browser_sends_it() {
        let tz: chrono_tz::Tz = "Europe/London".parse().unwrap();
        let typed = parse_at("2026-07-01 09:00", tz).unwrap();
        assert_eq!(typed.to_rfc3339(), "2026-07-01T08:00:00+00:00");
        assert_eq!(parse_at("2026-07-01T09:00", tz).unwrap(), typed);
        assert_eq!(parse_at("2026-07-01T08:00:00Z", tz).unwrap(), typed);
        assert!(parse_at("tomorrow", tz).unwrap_err().contains("not a time"));
        assert!(
            parse_at("2026-03-29 01:30", tz)
                .unwrap_err()
                .contains("clock change")
        );
    }
}
