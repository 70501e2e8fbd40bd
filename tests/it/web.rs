//! The web pages, over HTTP, on both backends: subscribe, confirm,
//! unsubscribe (with RFC 8058 one-click), preferences, the archive and
//! operations.

use std::time::Duration;

use chrono::Utc;
use necmail::campaigns::ClaimFrom;
use necmail::lists::{NewList, OptIn};
use necmail::store::{Store, StoreError};
use necmail::subscribers::{ConsentMethod, SubscriberEmail, SubscriptionStatus, SuppressionReason};
use necmail::tokens::Purpose;

use crate::campaigns::{campaign, report};
use crate::lists::{list_id, new_list, subscriber};
use crate::support::app::{BLOG, TestApp, csrf_of, spawn_app, spawn_app_with};
use crate::support::cli::run;
use crate::support::{TestDb, on_both_backends};

fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::parse(s).unwrap()
}

/// Lists `members` and `councillors` (public, double opt-in) and `staff`
/// (not public).
pub(crate) async fn lists(store: &dyn Store) {
    for slug in ["members", "councillors"] {
        store
            .create_list(&new_list(slug, OptIn::Double))
            .await
            .unwrap();
    }
    store
        .create_list(&NewList {
            public: false,
            ..new_list("staff", OptIn::Double)
        })
        .await
        .unwrap();
}

/// The status of `address`'s subscription to `list`, if any.
async fn status(store: &dyn Store, address: &str, list: &str) -> Option<SubscriptionStatus> {
    let s = store.subscriber(&email(address)).await.ok()?;
    s.lists
        .iter()
        .find(|m| m.slug.as_str() == list)
        .map(|m| m.status)
}

/// A confirmed subscriber of `lists`; returns their id.
async fn member(store: &dyn Store, address: &str, lists: &[&str]) -> i64 {
    store
        .add_subscriber(&subscriber(address, lists, true))
        .await
        .unwrap()
        .id
}

fn is_gone(e: StoreError) -> bool {
    matches!(e, StoreError::NotFound(_))
}

async fn text_of(response: reqwest::Response) -> String {
    response.text().await.unwrap()
}

/// Posts the subscribe form with a fresh CSRF token and `fields`.
async fn post_subscribe(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    let csrf = app.csrf("/subscribe").await;
    let form: Vec<(&str, &str)> = [("csrf", csrf.as_str())]
        .into_iter()
        .chain(fields.iter().copied())
        .collect();
    app.post_form("/subscribe", &form).await
}

/// Signs up `address` for members and returns the confirmation link's path.
async fn signed_up(app: &TestApp, address: &str) -> String {
    let r = app.subscribe(address, &["members"]).await;
    assert_eq!(r.status(), 200);
    app.confirmation_link().await
}

on_both_backends! {
    async fn the_subscribe_form_offers_only_public_lists(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let r = app.get("/subscribe").await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = text_of(r).await;
        assert!(html.contains("value=\"members\""), "{html}");
        assert!(html.contains("value=\"councillors\""));
        assert!(!html.contains("staff"), "a private list is not offered");
        assert!(html.contains("name=\"website\""), "the honeypot is there");
        assert!(html.contains("class=\"hp\""), "and hidden by the stylesheet");
        assert!(html.contains("value=\"councillor\""), "the role is asked");
        assert!(html.contains("<label for=\"email\">"));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("style=\""), "no inline styles: the CSP forbids them");
        let css = text_of(app.get("/static/style.css").await).await;
        assert!(css.contains(".hp { display: none; }"));
    }

    async fn a_subscription_is_stored_unconfirmed_with_its_consent_and_one_confirmation_email(db) {
        let mut app = spawn_app(db).await;
        lists(&*app.store).await;
        let r = post_subscribe(
            &app,
            &[
                ("email", "ann@example.org"),
                ("name", "Ann Smith"),
                ("list", "members"),
                ("list", "councillors"),
                ("role", "councillor"),
                ("website", ""),
            ],
        )
        .await;
        assert_eq!(r.status(), 200);
        let page = text_of(r).await;
        assert!(page.contains("Check your inbox"), "{page}");
        assert!(page.contains("<strong>ann@example.org</strong>"), "the address is repeated: {page}");
        let s = app.store.subscriber(&email("ann@example.org")).await.unwrap();
        assert_eq!(s.name.as_deref(), Some("Ann Smith"));
        assert_eq!(s.attributes.get("role"), Some("councillor"));
        assert_eq!(s.lists.len(), 2);
        for m in &s.lists {
            assert_eq!(m.status, SubscriptionStatus::Unconfirmed);
            assert_eq!(m.consent.method, ConsentMethod::Form);
            assert_eq!(m.consent.ip.as_deref(), Some("127.0.0.1"));
            assert_eq!(m.consent.wording, "subscribe-form-v1");
        }
        app.stop().await;
        let emails = app.emails();
        assert_eq!(emails.len(), 1, "one email for both lists");
        let message = &emails[0];
        assert!(message.contains("X-Envelope-To: <ann@example.org>"));
        assert!(message.contains("To: ann@example.org\r\n"), "no name in the email");
        assert!(!message.contains("Ann Smith"), "no user text but the address");
        assert!(app.confirmation_link().await.starts_with("/confirm/"));
    }

    async fn the_answer_is_the_same_for_a_new_an_existing_and_a_suppressed_address(db) {
        let mut app = spawn_app(db).await;
        lists(&*app.store).await;
        member(&*app.store, "old@example.org", &["members"]).await;
        member(&*app.store, "gone@example.org", &["members"]).await;
        app.store.unsubscribe(&email("gone@example.org"), None).await.unwrap();
        member(&*app.store, "erased@example.org", &["members"]).await;
        app.store.remove_subscriber(&email("erased@example.org"), true).await.unwrap();
        // The page repeats the address it was given, and nothing else differs.
        let answer = async |address: &str| {
            text_of(app.subscribe(address, &["members"]).await).await.replace(address, "ADDRESS")
        };
        let new = answer("new@example.org").await;
        let old = answer("old@example.org").await;
        let gone = answer("gone@example.org").await;
        let erased = answer("erased@example.org").await;
        assert!(new.contains("<strong>ADDRESS</strong>"), "{new}");
        assert_eq!(new, old);
        assert_eq!(new, gone);
        assert_eq!(new, erased);
        app.wait_for_emails(2).await;
        app.stop().await;
        let mut mailed: Vec<String> = app
            .emails()
            .iter()
            .filter_map(|m| m.split("X-Envelope-To: <").nth(1)?.split('>').next().map(str::to_owned))
            .collect();
        mailed.sort();
        assert_eq!(mailed, ["gone@example.org", "new@example.org"], "someone who left may come back");
        assert_eq!(
            status(&*app.store, "gone@example.org", "members").await,
            Some(SubscriptionStatus::Unconfirmed)
        );
    }

    async fn a_json_subscription_from_an_allowed_origin_needs_no_csrf_token(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/subscribe"))
            .header("Origin", BLOG)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204);
        assert_eq!(preflight.headers()["access-control-allow-origin"], BLOG);
        let refused = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/subscribe"))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);

        let r = app
            .client
            .post(app.url("/subscribe"))
            .header("Origin", BLOG)
            .json(&serde_json::json!({"email": "jo@example.org", "lists": ["members"], "role": "member"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], BLOG);
        let answer: serde_json::Value = r.json().await.unwrap();
        assert_eq!(answer["ok"], true);
        assert_eq!(
            status(&*app.store, "jo@example.org", "members").await,
            Some(SubscriptionStatus::Unconfirmed)
        );
        app.wait_for_emails(1).await;

        let invalid = app
            .client
            .post(app.url("/subscribe"))
            .json(&serde_json::json!({"email": "not an address", "lists": ["members"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(invalid.status(), 422);
        let answer: serde_json::Value = invalid.json().await.unwrap();
        assert_eq!(answer["ok"], false);
        assert!(answer["error"].as_str().unwrap().contains("email address"));

        let foreign = app
            .client
            .post(app.url("/subscribe"))
            .header("Origin", "https://evil.example")
            .json(&serde_json::json!({"email": "eve@example.org", "lists": ["members"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 403);
        assert!(app.store.subscriber(&email("eve@example.org")).await.is_err());
    }

    async fn a_filled_honeypot_looks_like_success_and_stores_nothing(db) {
        let mut app = spawn_app(db).await;
        lists(&*app.store).await;
        let r = post_subscribe(
            &app,
            &[("email", "bot@example.org"), ("list", "members"), ("website", "http://spam.example")],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert!(text_of(r).await.contains("Check your inbox"));
        app.stop().await;
        assert!(app.emails().is_empty());
        assert!(is_gone(app.store.subscriber(&email("bot@example.org")).await.unwrap_err()));
    }

    async fn a_form_without_a_good_csrf_token_is_refused_with_403(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let missing = app
            .post_form("/subscribe", &[("email", "ann@example.org"), ("list", "members")])
            .await;
        assert_eq!(missing.status(), 403);
        assert!(text_of(missing).await.contains("This form has expired"));
        let forged = app
            .post_form("/subscribe", &[("csrf", "AAAAAAAAAAAAAAAAAAAA"), ("email", "ann@example.org"), ("list", "members")])
            .await;
        assert_eq!(forged.status(), 403);
        assert!(app.store.subscriber(&email("ann@example.org")).await.is_err());
    }

    async fn a_flood_from_one_address_is_refused_with_429(db) {
        let app = spawn_app_with(db, &[("NECMAIL_SUBSCRIBE_PER_IP_PER_HOUR", "3")]).await;
        lists(&*app.store).await;
        for i in 0..3 {
            let r = app.subscribe(&format!("p{i}@example.org"), &["members"]).await;
            assert_eq!(r.status(), 200);
        }
        let r = app.subscribe("p3@example.org", &["members"]).await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
        assert!(text_of(r).await.contains("Too many requests"));
        assert!(app.store.subscriber(&email("p3@example.org")).await.is_err());
    }

    async fn a_fourth_confirmation_email_in_a_day_is_not_sent(db) {
        let mut app = spawn_app(db).await;
        lists(&*app.store).await;
        let mut pages = Vec::new();
        for sent in 1..=4 {
            let r = app.subscribe("ann@example.org", &["members"]).await;
            assert_eq!(r.status(), 200);
            pages.push(text_of(r).await);
            // A later sign-up supersedes a link not yet sent, so each is
            // awaited before the next.
            if sent <= 3 {
                app.wait_for_emails(sent).await;
            }
        }
        assert!(pages.windows(2).all(|w| w[0] == w[1]), "the refusal does not show");
        app.stop().await;
        assert_eq!(app.emails().len(), 3);
    }

    async fn over_long_and_multi_line_fields_are_refused_and_nothing_is_stored(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let long_local = format!("{}@example.org", "a".repeat(300));
        let long_name = "n".repeat(300);
        for (address, name) in [
            (long_local.as_str(), ""),
            ("ann@example.org", "Ann\r\nBcc: everyone@example.org"),
            ("ann@example.org", long_name.as_str()),
            ("ann@exam\nple.org", ""),
        ] {
            let r = post_subscribe(&app, &[("email", address), ("name", name), ("list", "members")]).await;
            assert_eq!(r.status(), 422, "{address:?} {name:?}");
            let html = text_of(r).await;
            assert!(html.contains("class=\"error\""), "{html}");
        }
        assert!(app.store.subscriber(&email("ann@example.org")).await.is_err());
        let huge = "x".repeat(20_000);
        let r = app.post_form("/subscribe", &[("email", &huge)]).await;
        assert_eq!(r.status(), 413);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }

    async fn a_confirmation_link_changes_nothing_on_get_and_confirms_once_on_post(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let link = signed_up(&app, "ann@example.org").await;
        let page = app.get(&link).await;
        assert_eq!(page.status(), 200);
        let html = text_of(page).await;
        assert!(html.contains("The members list"), "{html}");
        assert_eq!(
            status(&*app.store, "ann@example.org", "members").await,
            Some(SubscriptionStatus::Unconfirmed),
            "a GET changes nothing"
        );
        let csrf = csrf_of(&html);
        let without = app.post_form(&link, &[]).await;
        assert_eq!(without.status(), 403);
        let confirmed = app.post_form(&link, &[("csrf", &csrf)]).await;
        assert_eq!(confirmed.status(), 200);
        assert!(text_of(confirmed).await.contains("You are subscribed"));
        assert_eq!(
            status(&*app.store, "ann@example.org", "members").await,
            Some(SubscriptionStatus::Confirmed)
        );
        let again = app.post_form(&link, &[("csrf", &csrf)]).await;
        assert_eq!(again.status(), 410);
        assert!(text_of(again).await.contains("already used or has expired"));
        assert_eq!(app.get(&link).await.status(), 410);
    }

    async fn an_expired_confirmation_link_is_refused(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        signed_up(&app, "ann@example.org").await;
        let id = app.store.subscriber(&email("ann@example.org")).await.unwrap().id;
        let old = (Utc::now() - chrono::Duration::days(8)).timestamp();
        let token = app.signer.sign(Purpose::Confirm, &[id as u64, old as u64]);
        let r = app.get(&format!("/confirm/{token}")).await;
        assert_eq!(r.status(), 410);
        assert!(text_of(r).await.contains("already used or has expired"));
    }

    async fn forged_and_truncated_confirmation_links_are_refused(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let link = signed_up(&app, "ann@example.org").await;
        let token = link.trim_start_matches("/confirm/");
        let mut forged = token.as_bytes().to_vec();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        for bad in [forged.as_str(), &token[..token.len() - 3], "abc", "%00%0A"] {
            let r = app.get(&format!("/confirm/{bad}")).await;
            assert_eq!(r.status(), 400, "{bad}");
            assert!(text_of(r).await.contains("incomplete or damaged"));
        }
        let other = app.signer.sign(Purpose::Unsubscribe, &[1, 1]);
        assert_eq!(app.get(&format!("/confirm/{other}")).await.status(), 400);
        assert_eq!(
            status(&*app.store, "ann@example.org", "members").await,
            Some(SubscriptionStatus::Unconfirmed)
        );
    }

    async fn a_single_opt_in_list_is_joined_at_once(db) {
        let mut app = spawn_app(db).await;
        app.store.create_list(&new_list("news", OptIn::Single)).await.unwrap();
        let r = app.subscribe("ann@example.org", &["news"]).await;
        assert_eq!(r.status(), 200);
        let page = text_of(r).await;
        app.stop().await;
        assert!(app.emails().is_empty(), "nothing to confirm");
        assert!(page.contains("you are on it already"));
        assert_eq!(
            status(&*app.store, "ann@example.org", "news").await,
            Some(SubscriptionStatus::Confirmed)
        );
    }

    async fn an_unsubscribe_link_changes_nothing_on_get(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let path = app.unsubscribe_path(id, list_id(&*app.store, "members").await);
        let r = app.get(&path).await;
        assert_eq!(r.status(), 200);
        let html = text_of(r).await;
        assert!(html.contains("value=\"list\"") && html.contains("value=\"all\""), "{html}");
        assert_eq!(
            status(&*app.store, "ann@example.org", "members").await,
            Some(SubscriptionStatus::Confirmed)
        );
        let bad = app.get("/u/AAAAAAAAAAAAAAAAAAAAAA").await;
        assert_eq!(bad.status(), 400);
    }

    async fn an_unsubscribe_post_leaves_one_list_or_everything(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members", "councillors"]).await;
        let path = app.unsubscribe_path(id, list_id(&*app.store, "members").await);
        let csrf = app.csrf(&path).await;
        let none = app.post_form(&path, &[("choice", "list")]).await;
        assert_eq!(none.status(), 403);
        let r = app.post_form(&path, &[("csrf", &csrf), ("choice", "list")]).await;
        assert_eq!(r.status(), 200);
        let html = text_of(r).await;
        assert!(html.contains("/p/"), "a link to the preferences: {html}");
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));
        assert_eq!(status(&*app.store, "ann@example.org", "councillors").await, Some(SubscriptionStatus::Confirmed));
        assert!(app.store.suppression(&email("ann@example.org")).await.unwrap().is_none());

        let r = app.post_form(&path, &[("csrf", &csrf), ("choice", "all")]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(status(&*app.store, "ann@example.org", "councillors").await, Some(SubscriptionStatus::Unsubscribed));
        let suppression = app.store.suppression(&email("ann@example.org")).await.unwrap().unwrap();
        assert_eq!(suppression.reason, SuppressionReason::Unsubscribed);
    }

    async fn the_unsubscribe_page_of_a_message_sent_through_two_lists_names_and_leaves_both(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members", "councillors", "staff"]).await;
        let (members, councillors) = (list_id(&*app.store, "members").await, list_id(&*app.store, "councillors").await);
        let mut token = String::new();
        app.signer.unsubscribe_into(id as u64, [members as u64, councillors as u64], &mut token);
        let path = format!("/u/{token}");
        let html = text_of(app.get(&path).await).await;
        assert!(
            html.contains("stop getting <strong>The members list and The councillors list</strong>"),
            "{html}"
        );
        let csrf = app.csrf(&path).await;
        let r = app.post_form(&path, &[("csrf", &csrf), ("choice", "list")]).await;
        assert_eq!(r.status(), 200);
        assert!(text_of(r).await.contains("The members list and The councillors list"));
        for (slug, left) in [("members", true), ("councillors", true), ("staff", false)] {
            let expected = if left { SubscriptionStatus::Unsubscribed } else { SubscriptionStatus::Confirmed };
            assert_eq!(status(&*app.store, "ann@example.org", slug).await, Some(expected), "{slug}");
        }
    }

    async fn one_click_unsubscribe_answers_200_without_a_redirect_and_the_delivery_is_skipped(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let report = report(&*app.store).await;
        let campaign = campaign(&*app.store, report, &["members"]).await;
        let path = app.unsubscribe_path(id, list_id(&*app.store, "members").await);
        let r = app.post(&path, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click").await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("location").is_none());
        assert!(r.headers().get("set-cookie").is_none());
        assert!(text_of(r).await.len() < 100);
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));
        let claimed = app
            .store
            .claim(campaign, "test-worker", 10, Duration::from_secs(60), ClaimFrom::Anywhere)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(!claimed[0].eligible, "the engine skips the delivery");
    }

    async fn preferences_rename_and_turn_lists_on_and_off(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members", "staff"]).await;
        let path = app.preferences_path(id);
        let page = text_of(app.get(&path).await).await;
        assert!(page.contains("ann@example.org"));
        assert!(page.contains("The staff list"), "private lists are shown, not offered");
        assert!(!page.contains("value=\"staff\""));
        let csrf = csrf_of(&page);
        let r = app
            .post_form(&path, &[("csrf", &csrf), ("name", "Ann Jones"), ("list", "councillors")])
            .await;
        assert_eq!(r.status(), 200);
        assert!(text_of(r).await.contains("Your changes are saved"));
        let s = app.store.subscriber(&email("ann@example.org")).await.unwrap();
        assert_eq!(s.name.as_deref(), Some("Ann Jones"));
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));
        assert_eq!(status(&*app.store, "ann@example.org", "councillors").await, Some(SubscriptionStatus::Confirmed));
        assert_eq!(status(&*app.store, "ann@example.org", "staff").await, Some(SubscriptionStatus::Confirmed));
        let bad = app.post_form(&path, &[("csrf", &csrf), ("name", "Ann\nJones")]).await;
        assert_eq!(bad.status(), 422);
        let forged = app.post_form(&path, &[("csrf", "nope"), ("name", "Mallory")]).await;
        assert_eq!(forged.status(), 403);
        assert!(text_of(forged).await.contains("This form has expired"));
        let other = app.preferences_path(id + 1000);
        let elsewhere = app.post_form(&other, &[("csrf", &csrf), ("name", "Mallory")]).await;
        assert_eq!(elsewhere.status(), 403, "a CSRF token works only on its own page");
        let leave = app.post_form(&format!("{path}/leave"), &[("csrf", &csrf)]).await;
        assert_eq!(leave.status(), 200);
        assert_eq!(status(&*app.store, "ann@example.org", "councillors").await, Some(SubscriptionStatus::Unsubscribed));
    }

    async fn the_preferences_page_changes_the_member_or_councillor_answer(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let path = app.preferences_path(id);
        let page = text_of(app.get(&path).await).await;
        assert!(page.contains("id=\"role-none\" name=\"role\" value=\"\" checked"), "{page}");
        let csrf = csrf_of(&page);
        let role = async |answer: &str| {
            let fields = [("csrf", csrf.as_str()), ("list", "members"), ("role", answer)];
            let r = app.post_form(&path, &fields).await;
            let status = r.status();
            let page = text_of(r).await;
            let s = app.store.subscriber(&email("ann@example.org")).await.unwrap();
            (status, page, s.attributes.get("role").map(str::to_owned))
        };
        let (status, page, stored) = role("councillor").await;
        assert_eq!((status.as_u16(), stored.as_deref()), (200, Some("councillor")));
        assert!(page.contains("value=\"councillor\" checked"), "{page}");
        let (status, _, stored) = role("mayor").await;
        assert_eq!((status.as_u16(), stored.as_deref()), (422, Some("councillor")), "refused, kept");
        let (status, _, stored) = role("").await;
        assert_eq!((status.as_u16(), stored), (200, None), "rather not say removes it");
    }

    async fn download_my_data_gives_json_with_the_consent_record(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let link = signed_up(&app, "ann@example.org").await;
        let csrf = app.csrf(&link).await;
        app.post_form(&link, &[("csrf", &csrf)]).await;
        let id = app.store.subscriber(&email("ann@example.org")).await.unwrap().id;
        let path = app.preferences_path(id);
        let csrf = app.csrf(&path).await;
        assert_eq!(app.post_form(&format!("{path}/data"), &[]).await.status(), 403);
        let r = app.post_form(&format!("{path}/data"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
        let data: serde_json::Value = r.json().await.unwrap();
        assert_eq!(data["email"], "ann@example.org");
        let consent = &data["lists"][0]["consent"];
        assert_eq!(consent["method"], "form");
        assert_eq!(consent["ip"], "127.0.0.1");
        assert_eq!(consent["wording"], "subscribe-form-v1");
        assert!(data["lists"][0]["confirmed_at"].is_string());
    }

    async fn erasure_asks_first_and_leaves_only_the_suppression(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let path = app.preferences_path(id);
        let page = text_of(app.get(&path).await).await;
        assert!(page.contains(&format!("{path}/erase")));
        let ask = app.get(&format!("{path}/erase")).await;
        assert_eq!(ask.status(), 200);
        let csrf = csrf_of(&text_of(ask).await);
        assert!(app.store.subscriber(&email("ann@example.org")).await.is_ok(), "asking erases nothing");
        let r = app.post_form(&format!("{path}/erase"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 200);
        assert!(text_of(r).await.contains("Your data has been erased"));
        assert!(is_gone(app.store.subscriber(&email("ann@example.org")).await.unwrap_err()));
        let suppression = app.store.suppression(&email("ann@example.org")).await.unwrap().unwrap();
        assert_eq!(suppression.reason, SuppressionReason::Erased);
        assert_eq!(app.get(&path).await.status(), 410, "the link no longer works");
    }

    async fn an_expired_preferences_link_changes_nothing_and_offers_a_fresh_link_by_email(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let fresh_enough = app.old_preferences_path(id, 59);
        assert_eq!(app.get(&fresh_enough).await.status(), 200);
        let path = app.old_preferences_path(id, 61);
        let csrf = app.csrf(&app.preferences_path(id)).await;
        let page = app.get(&path).await;
        assert_eq!(page.status(), 410);
        let page = text_of(page).await;
        assert!(page.contains("This link has expired"), "{page}");
        assert!(page.contains("60 days"), "{page}");
        for action in ["data", "erase", "leave"] {
            let r = app.post_form(&format!("{path}/{action}"), &[("csrf", &csrf)]).await;
            assert_eq!(r.status(), 410, "{action}");
        }
        assert!(app.store.subscriber(&email("ann@example.org")).await.is_ok());
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Confirmed));

        let renew = csrf_of(&page);
        assert_eq!(app.post_form(&format!("{path}/renew"), &[]).await.status(), 403);
        let r = app.post_form(&format!("{path}/renew"), &[("csrf", &renew)]).await;
        assert_eq!(r.status(), 200);
        assert!(text_of(r).await.contains("We have sent a fresh link"));
        let mail = app.wait_for_emails(1).await.remove(0);
        assert!(mail.contains("To: ann@example.org"), "{mail}");
        let start = mail.find("/p/").expect("a preferences link");
        let link: String = mail[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "/-_".contains(*c)).collect();
        assert_eq!(app.get(&link).await.status(), 200, "{link}");
    }

    async fn a_preferences_link_without_an_issue_time_counts_as_expired(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let token = app.signer.sign(Purpose::Preferences, &[id as u64]);
        assert_eq!(app.get(&format!("/p/{token}")).await.status(), 410);
    }

    async fn links_signed_with_the_previous_secret_work_after_a_rotation(db) {
        let app = spawn_app_with(db, &[
            ("NECMAIL_SECRET", "the new secret of some length"),
            ("NECMAIL_SECRET_PREVIOUS", crate::support::app::SECRET),
        ]).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let old = necmail::tokens::Signer::new(crate::support::app::SECRET);
        let list = list_id(&*app.store, "members").await;
        let token = old.sign(Purpose::Unsubscribe, &[id as u64, list as u64]);
        let r = app.post(&format!("/u/{token}"), "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click").await;
        assert_eq!(r.status(), 200);
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));
        let forged = necmail::tokens::Signer::new("some other secret entirely").sign(Purpose::Unsubscribe, &[id as u64, list as u64]);
        assert_eq!(app.get(&format!("/u/{forged}")).await.status(), 400);
    }

    async fn the_archive_lists_only_sent_reports_with_web_versions_without_personal_links(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        member(&*app.store, "ann@example.org", &["members"]).await;
        let sent = report(&*app.store).await;
        campaign(&*app.store, sent, &["members"]).await;
        let unsent = app
            .store
            .insert_report(&necmail::reports::ReportDraft {
                title: "A draft <not sent>".into(),
                meeting_date: None,
                summary: None,
                body_markdown: "## Secret\n\nNot yet.\n".into(),
                source: necmail::reports::ReportSource::Paste,
                published_at: None,
                excerpt: None,
            }, &Default::default())
            .await
            .unwrap();
        let unsent_slug = match unsent {
            necmail::reports::Stored::New(r) => r.slug,
            other => panic!("{other:?}"),
        };
        let sent_slug = app.store.report(&necmail::reports::ReportRef::Id(sent)).await.unwrap().slug;
        let html = text_of(app.get("/archive").await).await;
        assert!(html.contains("Labour NEC Report – March 2026"), "{html}");
        assert!(html.contains(&format!("/archive/{sent_slug}")));
        assert!(!html.contains("A draft"));
        assert_eq!(app.get(&format!("/archive/{unsent_slug}")).await.status(), 404);
        let r = app.get(&format!("/archive/{sent_slug}")).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        let web = text_of(r).await;
        assert!(web.contains("575,000 members"));
        assert!(!web.contains("/u/") && !web.contains("/p/"), "no personal links: {web}");
        assert!(!web.contains("ann@example.org"));
        assert!(!web.contains("Unsubscribe") && !web.contains("your address"), "no subscriber footer: {web}");
        assert!(web.contains("Get these reports by email") && web.contains("href=\"https://nec.example/subscribe\""), "{web}");

        let feed = app.get("/archive/feed.xml").await;
        assert_eq!(feed.status(), 200);
        assert!(feed.headers()["content-type"].to_str().unwrap().starts_with("application/atom+xml"));
        let parsed = feed_rs::parser::parse(feed.bytes().await.unwrap().as_ref()).expect("valid Atom");
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].title.as_ref().unwrap().content, "Labour NEC Report – March 2026");
        assert_eq!(
            parsed.entries[0].links[0].href,
            format!("https://nec.example/archive/{sent_slug}")
        );
        let content = parsed.entries[0].content.as_ref().and_then(|c| c.body.as_deref()).unwrap_or_default();
        assert!(content.contains("575,000 members"), "the whole report, not only its summary: {content}");
    }

    async fn an_archived_report_loads_images_only_from_necmail_itself_or_written_into_it(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        member(&*app.store, "ann@example.org", &["members"]).await;
        let ours = format!("https://nec.example/media/{}.png", "a".repeat(64));
        let body = format!(
            "## Photos\n\n![Ours]({ours})\n\n![Written in](data:image/png;base64,iVBORw0KGgo=)\n"
        );
        let sent = crate::campaigns::paste(&*app.store, "Labour NEC Report – April 2026", &body).await;
        campaign(&*app.store, sent.id, &["members"]).await;
        let r = app.get(&format!("/archive/{}", sent.slug)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        let html = text_of(r).await;
        assert!(html.contains(&format!("src=\"{ours}\"")), "{html}");
        assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""), "{html}");
    }

    async fn an_empty_archive_feed_is_dated_now_not_1970(db) {
        let app = spawn_app(db).await;
        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let feed = app.get("/archive/feed.xml").await;
        assert_eq!(feed.status(), 200);
        let parsed = feed_rs::parser::parse(feed.bytes().await.unwrap().as_ref()).expect("valid Atom");
        assert!(parsed.entries.is_empty());
        assert!(parsed.updated.is_some_and(|at| at >= before), "{:?}", parsed.updated);
    }

    async fn the_pages_name_the_site_and_committee_as_configured(db) {
        let app = spawn_app_with(db, &[
            ("NECMAIL_SITE_NAME", "Scottish Executive reports"),
            ("NECMAIL_COMMITTEE_NAME", "Scottish Executive"),
        ]).await;
        lists(&*app.store).await;
        let html = text_of(app.get("/subscribe").await).await;
        assert!(html.contains("<h1>Get the Scottish Executive reports by email</h1>"), "{html}");
        assert!(html.contains("Scottish Executive reports</title>"), "{html}");
        assert!(!html.contains("NEC"), "{html}");
    }

    async fn a_test_message_is_marked_and_its_links_work_for_a_stranger_and_an_unsent_report(db) {
        let mut app = spawn_app(db).await;
        lists(&*app.store).await;
        // An ASCII title, so that the subject is not an encoded word.
        let markdown = "---\ntitle: NEC Report March 2026\n---\nWe have 575,000 members.\n";
        crate::support::cli::run_with_stdin(db, &["report", "import", "-"], markdown.as_bytes()).ok();
        let id = crate::support::cli::run(db, &["report", "ls", "--json"]).json()[0]["id"].clone();
        let out = crate::support::cli::run_command(
            crate::support::cli::necmail(db)
                .env("NECMAIL_SECRET", crate::support::app::SECRET)
                .env("NECMAIL_PUBLIC_URL", crate::support::app::PUBLIC_URL)
                .env("NECMAIL_OUTBOX_DIR", &app.outbox)
                .args(["send-test", &id.to_string(), "--to", "stranger@example.org"]),
        );
        out.ok();
        let message = app.wait_for_emails(1).await.remove(0);
        assert!(message.contains("Subject: [TEST] NEC Report March 2026\r\n"), "{message}");
        assert!(message.contains("it is not a subscription"), "{message}");
        assert!(!message.contains("is subscribed to"), "{message}");

        // The List-Unsubscribe header comes first and links to /preview/TOKEN/link.
        let link = app.link_in_newest_email("/preview/").await;
        let web = link.trim_end_matches("/link").to_owned();
        let personal = format!("{web}/link");
        let public = crate::support::app::PUBLIC_URL;
        assert!(message.contains(&format!("Read it on the web: {public}{web}\r\n")), "{message}");
        assert!(message.contains(&format!("Unsubscribe: {public}{personal}")), "{message}");
        let page = app.get(&web).await;
        assert_eq!(page.status(), 200, "the unsent report's web version: {web}");
        assert!(text_of(page).await.contains("575,000 members"));

        let page = app.get(&personal).await;
        assert_eq!(page.status(), 200);
        assert!(text_of(page).await.contains("Nothing has been changed"));
        let form = "application/x-www-form-urlencoded";
        let one_click = app.post(&personal, form, "List-Unsubscribe=One-Click").await;
        assert_eq!(one_click.status(), 200);
        let forged = format!("{}x", web);
        assert_ne!(app.get(&forged).await.status(), 200);
        app.stop().await;
    }

    async fn every_form_error_is_shown_by_its_field_and_named_for_screen_readers(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let r = post_subscribe(&app, &[("email", "not an address"), ("name", "Ann\nBcc: x"), ("role", "mayor")]).await;
        assert_eq!(r.status(), 422);
        let html = text_of(r).await;
        assert!(html.contains("Please correct these 4 things"), "{html}");
        for (field, message) in [
            ("email", "That email address cannot be used"),
            ("name", "That name cannot be used"),
            ("lists", "Please choose at least one list."),
            ("role", "Please say whether you are a member or a councillor."),
        ] {
            assert!(html.contains(&format!("<li><a href=\"#{field}\">{message}")), "{field}: {html}");
            assert!(html.contains(&format!("id=\"{field}-error\">{message}")), "{field}: {html}");
            assert!(html.contains(&format!("aria-describedby=\"{field}-error\"")), "{field}: {html}");
        }
        assert!(html.contains("id=\"email\" name=\"email\""), "{html}");
        assert_eq!(html.matches("aria-invalid=\"true\"").count(), 2, "the two text fields: {html}");
        let fine = text_of(app.get("/subscribe").await).await;
        assert!(!fine.contains("aria-invalid") && !fine.contains("class=\"error\""), "{fine}");
    }

    async fn the_forms_show_lists_in_the_order_the_admin_set(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let order = |html: &str| ["members", "councillors"].map(|slug| html.find(&format!("value=\"{slug}\"")).unwrap());
        let [members, councillors] = order(&text_of(app.get("/subscribe").await).await);
        assert!(councillors < members, "by slug at first");
        let moved = crate::support::cli::run(db, &["list", "set", "councillors", "--position", "5"]);
        assert!(moved.ok().contains("list councillors is at position 5"));
        let [members, councillors] = order(&text_of(app.get("/subscribe").await).await);
        assert!(members < councillors, "councillors moved after members");
        let listed = crate::support::cli::run(db, &["list", "ls", "--json"]).json();
        let slugs: Vec<&str> = listed.as_array().unwrap().iter().map(|l| l["slug"].as_str().unwrap()).collect();
        assert_eq!(slugs, ["members", "staff", "councillors"], "by position, then slug");
        assert_eq!(listed[2]["position"], 5);
        let missing = crate::support::cli::run(db, &["list", "set", "nope", "--position", "1"]);
        assert!(missing.fails(2).contains("there is no list"));
    }

    async fn healthz_answers_ok(db) {
        let app = spawn_app(db).await;
        let r = app.get("/healthz").await;
        assert_eq!(r.status(), 200);
        assert_eq!(text_of(r).await.trim(), "ok");
    }

    async fn metrics_have_the_expected_series_and_values(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        member(&*app.store, "ann@example.org", &["members"]).await;
        member(&*app.store, "bob@example.org", &["members"]).await;
        member(&*app.store, "cy@example.org", &["councillors"]).await;
        app.store.unsubscribe(&email("cy@example.org"), None).await.unwrap();
        let sent = report(&*app.store).await;
        campaign(&*app.store, sent, &["members"]).await;
        let tick = Utc::now() - chrono::Duration::minutes(5);
        let tick = chrono::DateTime::from_timestamp(tick.timestamp(), 0).unwrap();
        assert!(app.store.claim_tick("poll", tick).await.unwrap());
        let r = app.client.get(format!("{}/metrics", app.metrics)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = text_of(r).await;
        for line in [
            "necmail_deliveries{state=\"queued\"} 2",
            "necmail_deliveries{state=\"sent\"} 0",
            "necmail_queue_depth 2",
            "necmail_subscriptions{list=\"members\",status=\"confirmed\"} 2",
            "necmail_subscriptions{list=\"councillors\",status=\"unsubscribed\"} 1",
            "necmail_suppressions{reason=\"unsubscribed\"} 1",
            "necmail_suppressions{reason=\"hard-bounce\"} 0",
            "necmail_suppressions{reason=\"complaint\"} 0",
            &format!("necmail_scheduler_last_tick_seconds{{schedule=\"poll\"}} {}", tick.timestamp()),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(text.contains("# TYPE necmail_queue_depth gauge"));
    }

    async fn every_page_carries_the_security_headers(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let id = member(&*app.store, "ann@example.org", &["members"]).await;
        let pages = [
            "/subscribe".to_owned(),
            app.unsubscribe_path(id, list_id(&*app.store, "members").await),
            app.preferences_path(id),
            "/archive".to_owned(),
            "/archive/feed.xml".to_owned(),
            "/healthz".to_owned(),
            "/static/style.css".to_owned(),
            "/no/such/page".to_owned(),
            "/confirm/garbage".to_owned(),
        ];
        for path in &pages {
            let r = app.get(path).await;
            let h = r.headers();
            assert_eq!(
                h["content-security-policy"],
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                "{path}"
            );
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
        }
        let posted = app.post_form("/subscribe", &[]).await;
        assert_eq!(posted.headers()["x-frame-options"], "DENY");
    }

    async fn metrics_are_served_only_on_their_own_listener_and_healthz_reveals_nothing(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let public = app.get("/metrics").await;
        assert_eq!(public.status(), 404);
        assert!(!text_of(public).await.contains("necmail_subscriptions"));
        let private = app.client.get(format!("{}/metrics", app.metrics)).send().await.unwrap();
        assert_eq!(private.status(), 200);
        assert!(text_of(private).await.contains("list=\"staff\""));
        let other = app.client.get(format!("{}/subscribe", app.metrics)).send().await.unwrap();
        assert_eq!(other.status(), 404, "the metrics listener serves nothing else");
        let health = app.get("/healthz").await;
        assert_eq!(health.status(), 200);
        assert_eq!(text_of(health).await, "ok\n");
    }

    async fn a_one_click_unsubscribe_sent_as_multipart_form_data_is_honoured(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let ann = member(&*app.store, "ann@example.org", &["members"]).await;
        let bob = member(&*app.store, "bob@example.org", &["members"]).await;
        let members = list_id(&*app.store, "members").await;
        let body = "--b0uNd4ry-7f3a\r\n\
            Content-Disposition: form-data; name=\"source\"\r\n\r\nprovider\r\n\
            --b0uNd4ry-7f3a\r\n\
            Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n\
            --b0uNd4ry-7f3a--\r\n";
        let r = app.post(&app.unsubscribe_path(ann, members), "multipart/form-data; boundary=b0uNd4ry-7f3a", body).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("location").is_none());
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));

        // A quoted boundary with the characters RFC 2046 allows, LF-free
        // parts after a preamble, and the field last among several.
        let body = "preamble\r\n------=_Part_12.abc:def\r\n\
            Content-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
            ------=_Part_12.abc:def\r\n\
            Content-Disposition: form-data; name=\"b\"; filename=\"b.txt\"\r\nContent-Type: text/plain\r\n\r\n2\r\n\
            ------=_Part_12.abc:def\r\n\
            Content-Disposition: form-data; name=List-Unsubscribe\r\n\r\nOne-Click\r\n\
            ------=_Part_12.abc:def--";
        let r = app.post(&app.unsubscribe_path(bob, members), "multipart/form-data; charset=utf-8; boundary=\"----=_Part_12.abc:def\"", body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(status(&*app.store, "bob@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));
    }

    async fn a_one_click_unsubscribe_urlencoded_with_extra_fields_is_honoured(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let ann = member(&*app.store, "ann@example.org", &["members"]).await;
        let members = list_id(&*app.store, "members").await;
        let r = app
            .post_form(&app.unsubscribe_path(ann, members), &[("utm", "x"), ("List-Unsubscribe", "One-Click")])
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(status(&*app.store, "ann@example.org", "members").await, Some(SubscriptionStatus::Unsubscribed));
    }

    async fn past_the_hourly_limit_confirmations_wait_in_the_database_and_go_out_later(db) {
        let app = spawn_app_with(db, &[("NECMAIL_CONFIRMATIONS_PER_HOUR", "2")]).await;
        lists(&*app.store).await;
        for n in 0..5 {
            let r = app.subscribe(&format!("p{n}@example.org"), &["members"]).await;
            assert_eq!(r.status(), 200);
        }
        for n in 0..5 {
            assert!(
                status(&*app.store, &format!("p{n}@example.org"), "members").await.is_some(),
                "every sign-up is stored"
            );
        }
        app.wait_for_emails(2).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while app.store.confirmations_waiting().await.unwrap() != 3 {
            assert!(tokio::time::Instant::now() < deadline, "three confirmations wait");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(app.emails().len(), 2, "the limit holds");
        // An hour passes for the two sent (pruned as if an hour old, none
        // taken): the sender sends two more, and one still waits.
        let turn = app.store.take_confirmations(Utc::now() + chrono::Duration::seconds(1), 0).await.unwrap();
        assert!(turn.due.is_empty());
        app.wait_for_emails(4).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while app.store.confirmations_waiting().await.unwrap() != 1 {
            assert!(tokio::time::Instant::now() < deadline, "one confirmation still waits");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(app.emails().len(), 4);
    }

    async fn an_unknown_page_or_method_is_a_friendly_error_page(db) {
        let app = spawn_app(db).await;
        let r = app.get("/wp-login.php").await;
        assert_eq!(r.status(), 404);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = text_of(r).await;
        assert!(html.contains("Page not found"));
        assert!(html.contains("<html lang=\"en\">"));
        let r = app.client.delete(app.url("/subscribe")).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert!(text_of(r).await.contains("cannot be used that way"));
    }
}

#[tokio::test]
async fn a_taken_port_is_a_clear_bind_error() {
    let db = TestDb::sqlite();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config =
        necmail::config::Config::from_lookup(|k| (k == "NECMAIL_HTTP_ADDR").then(|| addr.clone()))
            .unwrap();
    let err = necmail::web::Application::build(necmail::web::Context {
        store: db.store().await,
        config: std::sync::Arc::new(config),
        templates: std::sync::Arc::new(necmail::render::Templates::load(None).unwrap()),
        transport: std::sync::Arc::new(
            necmail::delivery::Outbox::new(&db.dir.path().join("outbox")).unwrap(),
        ),
    })
    .await
    .err()
    .expect("the port is taken");
    assert!(matches!(err, necmail::web::WebError::Bind { .. }));
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn a_client_that_trickles_its_body_is_answered_408_and_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::sqlite();
    let app = spawn_app_with(&db, &[("NECMAIL_HTTP_BODY_TIMEOUT_SECS", "1")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /subscribe HTTP/1.1\r\nHost: nec.example\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        )
        .await
        .unwrap();
    // One byte every 200 ms: never idle long, never done.
    let trickle = tokio::spawn(async move {
        while write.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), read.read_exact(&mut answer))
        .await
        .expect("the server answers within the body timeout")
        .unwrap();
    trickle.abort();
    assert_eq!(
        &answer,
        b"HTTP/1.1 408",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut rest))
        .await
        .expect("and hangs up")
        .ok();
}

on_both_backends! {
    async fn what_people_do_on_the_pages_is_recorded_as_web_events(db) {
        let app = spawn_app(db).await;
        lists(&*app.store).await;
        let link = signed_up(&app, "ann@example.org").await;
        let csrf = app.csrf(&link).await;
        assert_eq!(app.post_form(&link, &[("csrf", &csrf)]).await.status(), 200);
        let id = app.store.subscriber(&email("ann@example.org")).await.unwrap().id;
        let members = list_id(&*app.store, "members").await;
        let councillors = list_id(&*app.store, "councillors").await;
        // The preferences page joins a list…
        let prefs = app.preferences_path(id);
        let csrf = app.csrf(&prefs).await;
        let fields = [("csrf", csrf.as_str()), ("list", "members"), ("list", "councillors")];
        assert_eq!(app.post_form(&prefs, &fields).await.status(), 200);
        // …one-click leaves it…
        let form = "application/x-www-form-urlencoded";
        let one_click = app.unsubscribe_path(id, councillors);
        assert_eq!(app.post(&one_click, form, "List-Unsubscribe=One-Click").await.status(), 200);
        // …the unsubscribe page leaves the other…
        let page = app.unsubscribe_path(id, members);
        let csrf = app.csrf(&page).await;
        let left = app.post_form(&page, &[("csrf", &csrf), ("choice", "list")]).await;
        assert_eq!(left.status(), 200);
        // …and the preferences page leaves everything.
        let csrf = app.csrf(&prefs).await;
        let all = app.post_form(&format!("{prefs}/leave"), &[("csrf", &csrf)]).await;
        assert_eq!(all.status(), 200);

        let listed = run(db, &["events", "ls", "--email", "ann@example.org", "--json"]).json();
        let mut seen: Vec<(String, String, Option<i64>)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["source"].as_str().unwrap().to_owned(),
                      e["list_id"].as_i64()))
            .collect();
        seen.reverse();
        let web = |kind: &str, list: Option<i64>| (kind.to_owned(), "web".to_owned(), list);
        assert_eq!(seen, [
            web("join", None),
            web("confirm", None),
            web("join", Some(councillors)),
            web("leave", Some(councillors)),
            web("leave", Some(members)),
            web("leave", None),
        ]);
        let text = run(db, &["events", "ls", "--email", "ann@example.org"]);
        assert!(text.ok().contains("one-click"), "{}", text.stdout);
    }
}
