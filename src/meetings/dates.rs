//! Dates written in a report's title or opening lines, read as evidence of
//! the meeting it covers: "14 July 2026", "Tuesday 14th July", "July 14,
//! 2026", "2026-07-14", and in a title also "March 2017" and "April’s". A
//! date without a year is taken as the last such date on or before the
//! report's publication. Month names count only when capitalised, so "may"
//! and "march" as words are not dates.

use chrono::{Datelike, NaiveDate};

/// A date that a text names: a day, or (in a title) a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mention {
    Day(NaiveDate),
    Month { year: i32, month: u32 },
}

impl Mention {
    /// Whether a meeting held on `day` is the one named.
    pub fn covers(self, day: NaiveDate) -> bool {
        match self {
            Mention::Day(d) => d == day,
            Mention::Month { year, month } => day.year() == year && day.month() == month,
        }
    }
}

/// The most tokens of one text read for dates: a title or a report's
/// opening lines are far shorter.
const MAX_TOKENS: usize = 400;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    /// A run of digits, without an ordinal's suffix (14th: 14).
    Number(&'a str),
    Mark(char),
}

/// The words, numbers and punctuation of `text`, at most [`MAX_TOKENS`].
fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while out.len() < MAX_TOKENS {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else { break };
        let taken = if c.is_ascii_digit() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            out.push(Token::Number(&rest[..digits]));
            let after = &rest[digits..];
            let ordinal = after.get(..2).is_some_and(|s| {
                ["st", "nd", "rd", "th"]
                    .iter()
                    .any(|o| s.eq_ignore_ascii_case(o))
            }) && !after[2..].starts_with(char::is_alphanumeric);
            digits + if ordinal { 2 } else { 0 }
        } else if c.is_alphabetic() {
            let end = rest
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(rest.len());
            out.push(Token::Word(&rest[..end]));
            end
        } else {
            out.push(Token::Mark(c));
            c.len_utf8()
        };
        rest = &rest[taken..];
    }
    out
}

/// The month (1 to 12) a capitalised word names in full, or by an
/// abbreviation of three letters or more ("Sept") when `abbreviated`.
fn month(token: Option<&Token>, abbreviated: bool) -> Option<u32> {
    let Some(Token::Word(word)) = token else {
        return None;
    };
    if !word.starts_with(char::is_uppercase) {
        return None;
    }
    let lower = word.to_lowercase();
    let n = MONTHS.iter().position(|m| {
        *m == lower || (abbreviated && lower.chars().count() >= 3 && m.starts_with(&lower))
    })?;
    u32::try_from(n + 1).ok()
}

/// The value of a number token of `min` to `max` digits.
fn number(token: Option<&Token>, min: usize, max: usize) -> Option<u32> {
    match token {
        Some(Token::Number(digits)) if (min..=max).contains(&digits.len()) => digits.parse().ok(),
        _ => None,
    }
}

fn is_mark(token: Option<&Token>, marks: &[char]) -> bool {
    matches!(token, Some(Token::Mark(c)) if marks.contains(c))
}

/// The dates `text` names, in order, for a report published on
/// `published`; months on their own ("March 2017") too when `months`.
pub fn mentions(text: &str, published: NaiveDate, months: bool) -> Vec<Mention> {
    let tokens = tokens(text);
    let at = |i: usize| tokens.get(i);
    // The index past a full stop (Sept.) or comma at `i`, if there is one.
    let skip = |i: usize, marks: &[char]| if is_mark(at(i), marks) { i + 1 } else { i };
    let year_at = |i: usize| number(at(i), 4, 4).and_then(|y| i32::try_from(y).ok());
    let day = |year: Option<i32>, month: u32, day: u32| match year {
        Some(year) => NaiveDate::from_ymd_opt(year, month, day),
        // Four years back at most: 29 February.
        None => (0..=4)
            .map(|n| published.year() - n)
            .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
            .find(|d| *d <= published),
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // 2026-07-14
        if let (Some(y), true, Some(m), true, Some(d)) = (
            year_at(i),
            is_mark(at(i + 1), &['-']),
            number(at(i + 2), 1, 2),
            is_mark(at(i + 3), &['-']),
            number(at(i + 4), 1, 2),
        ) {
            found.extend(NaiveDate::from_ymd_opt(y, m, d).map(Mention::Day));
            i += 5;
            continue;
        }
        // 14 July 2026, 14th of July
        if let Some(d) = number(at(i), 1, 2) {
            let m_at = if matches!(at(i + 1), Some(Token::Word("of"))) {
                i + 2
            } else {
                i + 1
            };
            if let Some(m) = month(at(m_at), true) {
                let y_at = skip(skip(m_at + 1, &['.']), &[',']);
                let year = year_at(y_at);
                found.extend(day(year, m, d).map(Mention::Day));
                i = if year.is_some() { y_at + 1 } else { m_at + 1 };
                continue;
            }
        }
        if let Some(m) = month(at(i), true) {
            let next = skip(i + 1, &['.']);
            // July 14, 2026
            if let Some(d) = number(at(next), 1, 2) {
                let y_at = skip(next + 1, &[',']);
                let year = year_at(y_at);
                found.extend(day(year, m, d).map(Mention::Day));
                i = if year.is_some() { y_at + 1 } else { next + 1 };
                continue;
            }
            // March 2017
            let y_at = skip(next, &[',']);
            if let Some(year) = year_at(y_at).filter(|_| months) {
                found.push(Mention::Month { year, month: m });
                i = y_at + 1;
                continue;
            }
        }
        // April’s
        if months
            && let Some(m) = month(at(i), false)
            && is_mark(at(i + 1), &['\'', '’'])
            && matches!(at(i + 2), Some(Token::Word("s")))
        {
            let year = if m <= published.month() {
                published.year()
            } else {
                published.year() - 1
            };
            found.push(Mention::Month { year, month: m });
            i += 3;
            continue;
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn day(s: &str) -> Mention {
        Mention::Day(date(s))
    }

    /// Mentions in a text published on 22 September 2026.
    fn read(text: &str, months: bool) -> Vec<Mention> {
        mentions(text, date("2026-09-22"), months)
    }

    #[test]
    fn days_are_read_in_the_ways_reports_write_them() {
        assert_eq!(
            read("The NEC met on 14 July 2026.", false),
            [day("2026-07-14")]
        );
        assert_eq!(
            read("On Tuesday 15th September the NEC met", false),
            [day("2026-09-15")]
        );
        assert_eq!(read("the 8th of Sept. 2026", false), [day("2026-09-08")]);
        assert_eq!(read("Meeting of July 14, 2026", false), [day("2026-07-14")]);
        assert_eq!(read("minutes (2026-07-14)", false), [day("2026-07-14")]);
        assert_eq!(
            read("From 21 March 2017 to Jan 3rd", false),
            [day("2017-03-21"), day("2026-01-03")]
        );
    }

    #[test]
    fn a_day_without_a_year_is_the_last_one_on_or_before_publication() {
        assert_eq!(read("met on 15 September", false), [day("2026-09-15")]);
        assert_eq!(read("met on 30 September", false), [day("2025-09-30")]);
        assert_eq!(read("met on 29 February", false), [day("2024-02-29")]);
    }

    #[test]
    fn months_count_only_in_titles_and_only_as_dates() {
        let title = "Labour NEC Report – March 2017";
        assert_eq!(
            read(title, true),
            [Mention::Month {
                year: 2017,
                month: 3
            }]
        );
        assert!(read(title, false).is_empty(), "not in opening lines");
        assert_eq!(
            read("Report from April’s Emergency NEC meeting", true),
            [Mention::Month {
                year: 2026,
                month: 4
            }]
        );
        assert_eq!(
            read("After December's meeting", true),
            [Mention::Month {
                year: 2025,
                month: 12
            }]
        );
        for not_a_date in [
            "Why We March",
            "What may come in 2026",
            "the march of 2017",
            "Jan's report",
            "Report to the NEC",
            "Membership at 575,000 on 31/12",
            "NEC Report – Labour Conference 2016",
            "45 Mayfair",
        ] {
            assert!(read(not_a_date, true).is_empty(), "{not_a_date}");
        }
    }

    #[test]
    fn impossible_dates_are_no_dates() {
        assert!(read("2026-02-30 and 31 June 2026", false).is_empty());
    }

    #[test]
    fn a_long_text_is_read_only_so_far() {
        let long = format!("{} 14 July 2026", "word ".repeat(MAX_TOKENS));
        assert!(read(&long, false).is_empty());
    }

    #[test]
    fn a_mention_covers_its_day_or_any_day_of_its_month() {
        assert!(day("2026-07-14").covers(date("2026-07-14")));
        assert!(!day("2026-07-14").covers(date("2026-07-15")));
        let march = Mention::Month {
            year: 2017,
            month: 3,
        };
        assert!(march.covers(date("2017-03-21")));
        assert!(!march.covers(date("2016-03-21")));
    }
}
