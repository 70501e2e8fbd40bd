//! What subscribers do for themselves through the web pages: sign up,
//! confirm, unsubscribe and change their preferences, on both backends.

use std::time::Duration;

use chrono::Utc;
use necmail::campaigns::{ClaimFrom, Outcome, Recorded};
use necmail::lists::{ListSlug, OptIn};
use necmail::store::{Store, StoreError};
use necmail::subscribers::{
    Consent, ConsentMethod, Pending, PreferenceChange, Signup, SignupOutcome, SubscriberEmail,
    SubscriberName, SubscriptionStatus, SuppressionReason,
};

use crate::campaigns::{campaign, world};
use crate::lists::{list_id, new_list, subscriber};
use crate::support::on_both_backends;

fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::parse(s).unwrap()
}

fn consent() -> Consent {
    Consent {
        at: Utc::now(),
        method: ConsentMethod::Form,
        ip: Some("192.0.2.7".into()),
        wording: "subscribe-form-v1".into(),
    }
}

fn signup(address: &str, lists: &[&str], issued_at: i64) -> Signup {
    Signup {
        email: email(address),
        name: None,
        attributes: Default::default(),
        lists: lists.iter().map(|l| ListSlug::parse(l).unwrap()).collect(),
        consent: consent(),
        issued_at,
    }
}

fn change(on: &[i64], off: &[i64]) -> PreferenceChange {
    PreferenceChange {
        name: None,
        on: on.to_vec(),
        off: off.to_vec(),
        role: None,
        consent: consent(),
    }
}

/// A stored sign-up: subscriber id, pending, joined and already-confirmed lists.
fn stored(outcome: SignupOutcome) -> (i64, Vec<String>, Vec<String>, Vec<String>) {
    match outcome {
        SignupOutcome::Stored {
            subscriber_id,
            pending,
            joined,
            already,
        } => (subscriber_id, pending, joined, already),
        SignupOutcome::Suppressed => panic!("the sign-up was suppressed"),
    }
}

/// Each list's slug and status for subscriber `id`, in slug order.
async fn statuses(store: &dyn Store, id: i64) -> Vec<(String, SubscriptionStatus)> {
    store
        .subscriber_by_id(id)
        .await
        .unwrap()
        .lists
        .iter()
        .map(|m| (m.slug.to_string(), m.status))
        .collect()
}

fn pending(address: &str, lists: &[&str]) -> Option<Pending> {
    Some(Pending {
        email: email(address),
        lists: lists.iter().map(|l| l.to_string()).collect(),
    })
}

on_both_backends! {
    async fn a_sign_up_to_a_double_opt_in_list_stays_unconfirmed_and_pending(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let (id, pending_lists, joined, already) =
            stored(store.sign_up(&signup("jo@example.org", &["members"], 1000)).await.unwrap());
        assert_eq!((pending_lists, joined, already), (vec!["The members list".to_owned()], vec![], vec![]));
        let s = store.subscriber_by_id(id).await.unwrap();
        assert_eq!(s.email, email("jo@example.org"));
        assert_eq!(s.lists[0].status, SubscriptionStatus::Unconfirmed);
        assert_eq!(s.lists[0].consent.method, ConsentMethod::Form);
        assert_eq!(s.lists[0].consent.ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(s.lists[0].consent.wording, "subscribe-form-v1");
        assert_eq!(store.pending(id, 1000).await.unwrap(), pending("jo@example.org", &["The members list"]));
    }

    async fn a_sign_up_to_a_single_opt_in_list_joins_at_once(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Single)).await.unwrap();
        let (id, pending_lists, joined, already) =
            stored(store.sign_up(&signup("jo@example.org", &["members", "councillors"], 1000)).await.unwrap());
        assert_eq!(pending_lists, ["The members list"]);
        assert_eq!(joined, ["The councillors list"]);
        assert!(already.is_empty());
        let s = store.subscriber_by_id(id).await.unwrap();
        let councillors = s.lists.iter().find(|m| m.slug.as_str() == "councillors").unwrap();
        assert_eq!(councillors.status, SubscriptionStatus::Confirmed);
        assert!(councillors.confirmed_at.is_some());
        assert_eq!(store.pending(id, 1000).await.unwrap(), pending("jo@example.org", &["The members list"]));
    }

    async fn a_sign_up_does_not_rename_an_existing_subscriber_and_reports_confirmed_lists(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        let mut first = subscriber("jo@example.org", &["members"], true);
        first.name = SubscriberName::parse("Jo").unwrap();
        first.attributes = ["ward=Canonbury".parse().unwrap()].into_iter().collect();
        store.add_subscriber(&first).await.unwrap();
        let mut again = signup("JO@example.org", &["members", "councillors"], 1000);
        again.name = SubscriberName::parse("Mallory").unwrap();
        again.attributes = ["ward=Elsewhere".parse().unwrap()].into_iter().collect();
        let (id, pending_lists, joined, already) = stored(store.sign_up(&again).await.unwrap());
        assert_eq!((pending_lists, joined, already), (vec!["The councillors list".to_owned()], vec![], vec!["The members list".to_owned()]));
        let s = store.subscriber_by_id(id).await.unwrap();
        assert_eq!(s.name.as_deref(), Some("Jo"));
        assert_eq!(s.attributes.get("ward"), Some("Canonbury"));
        let members = s.lists.iter().find(|m| m.slug.as_str() == "members").unwrap();
        assert_eq!(members.consent.method, ConsentMethod::Admin, "a confirmed subscription keeps its consent");
    }

    async fn a_suppressed_or_blocklisted_address_stores_nothing(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.remove_subscriber(&email("gone@example.org"), true).await.unwrap();
        assert_eq!(store.sign_up(&signup("gone@example.org", &["members"], 1000)).await.unwrap(), SignupOutcome::Suppressed);
        assert!(matches!(store.subscriber(&email("gone@example.org")).await, Err(StoreError::NotFound(_))));

        store.add_subscriber(&subscriber("blocked@example.org", &[], true)).await.unwrap();
        store.set_blocklisted(&email("blocked@example.org"), true).await.unwrap();
        assert_eq!(store.sign_up(&signup("blocked@example.org", &["members"], 1000)).await.unwrap(), SignupOutcome::Suppressed);
        assert!(store.subscriber(&email("blocked@example.org")).await.unwrap().lists.is_empty());
    }

    async fn a_sign_up_to_an_unknown_list_stores_nothing(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let err = store.sign_up(&signup("jo@example.org", &["members", "nope"], 1000)).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(matches!(store.subscriber(&email("jo@example.org")).await, Err(StoreError::NotFound(_))));
        let err = store.sign_up(&signup("jo@example.org", &[], 1000)).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
    }

    async fn a_confirmation_token_works_once(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let (id, ..) = stored(store.sign_up(&signup("jo@example.org", &["members"], 1000)).await.unwrap());
        assert_eq!(store.confirm(id, 1000).await.unwrap(), pending("jo@example.org", &["The members list"]));
        assert_eq!(store.confirm(id, 1000).await.unwrap(), None);
        assert_eq!(store.pending(id, 1000).await.unwrap(), None);
        let s = store.subscriber_by_id(id).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Confirmed);
        assert!(s.lists[0].confirmed_at.is_some());
    }

    async fn a_superseded_confirmation_does_not_confirm(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let (id, ..) = stored(store.sign_up(&signup("jo@example.org", &["members"], 1000)).await.unwrap());
        stored(store.sign_up(&signup("jo@example.org", &["members"], 2000)).await.unwrap());
        assert_eq!(store.pending(id, 1000).await.unwrap(), None);
        assert_eq!(store.confirm(id, 1000).await.unwrap(), None);
        assert_eq!(statuses(&*store, id).await, [("members".to_owned(), SubscriptionStatus::Unconfirmed)]);
        assert_eq!(store.confirm(id, 2000).await.unwrap(), pending("jo@example.org", &["The members list"]));
    }

    async fn confirming_an_unknown_subscriber_finds_nothing(db) {
        let store = db.store().await;
        assert_eq!(store.pending(4242, 1000).await.unwrap(), None);
        assert_eq!(store.confirm(4242, 1000).await.unwrap(), None);
        assert!(matches!(store.subscriber_by_id(4242).await, Err(StoreError::NotFound(_))));
    }

    async fn signing_up_again_after_unsubscribing_asks_for_confirmation_again(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let members = list_id(&*store, "members").await;
        let (id, ..) = stored(store.sign_up(&signup("jo@example.org", &["members"], 1000)).await.unwrap());
        store.confirm(id, 1000).await.unwrap().unwrap();
        assert!(store.unsubscribe_by_id(id, Some(&[members])).await.unwrap());
        let (_, pending_lists, _, _) = stored(store.sign_up(&signup("jo@example.org", &["members"], 2000)).await.unwrap());
        assert_eq!(pending_lists, ["The members list"]);
        let s = store.subscriber_by_id(id).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Unconfirmed);
        assert_eq!(s.lists[0].unsubscribed_at, None);
        assert_eq!(store.confirm(id, 2000).await.unwrap(), pending("jo@example.org", &["The members list"]));
    }

    async fn confirmation_emails_are_limited_per_address_and_window(db) {
        let store = db.store().await;
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        for _ in 0..3 {
            assert!(store.allow_confirmation_email(&email("jo@example.org"), hour_ago, 3).await.unwrap());
        }
        assert!(!store.allow_confirmation_email(&email("jo@example.org"), hour_ago, 3).await.unwrap());
        assert!(!store.allow_confirmation_email(&email("JO@example.org"), hour_ago, 3).await.unwrap(), "the same address in another case");
        assert!(store.allow_confirmation_email(&email("ann@example.org"), hour_ago, 3).await.unwrap());
        let later = Utc::now() + chrono::Duration::seconds(1);
        assert!(store.allow_confirmation_email(&email("jo@example.org"), later, 3).await.unwrap(), "older emails fall out of the window");
    }

    async fn concurrent_confirmation_emails_do_not_exceed_the_limit(db) {
        let store = db.store().await;
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        let tries = (0..8).map(|_| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.allow_confirmation_email(&email("jo@example.org"), hour_ago, 3).await.unwrap() })
        });
        let mut allowed = 0;
        for t in tries.collect::<Vec<_>>() {
            allowed += usize::from(t.await.unwrap());
        }
        assert_eq!(allowed, 3);
    }

    async fn concurrent_sign_ups_of_a_new_address_store_one_subscriber(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let tries = (0..6).map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { stored(store.sign_up(&signup("jo@example.org", &["members"], 1000 + i)).await.unwrap()).0 })
        });
        let mut ids = Vec::new();
        for t in tries.collect::<Vec<_>>() {
            ids.push(t.await.unwrap());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(statuses(&*store, ids[0]).await, [("members".to_owned(), SubscriptionStatus::Unconfirmed)]);
    }

    async fn unsubscribing_by_id_from_one_list_leaves_the_others(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        let id = store.add_subscriber(&subscriber("jo@example.org", &["members", "councillors"], true)).await.unwrap().id;
        let members = list_id(&*store, "members").await;
        assert!(store.unsubscribe_by_id(id, Some(&[members])).await.unwrap());
        assert!(store.unsubscribe_by_id(id, Some(&[members])).await.unwrap(), "a second click is harmless");
        assert_eq!(statuses(&*store, id).await, [
            ("councillors".to_owned(), SubscriptionStatus::Confirmed),
            ("members".to_owned(), SubscriptionStatus::Unsubscribed),
        ]);
        let s = store.subscriber_by_id(id).await.unwrap();
        assert!(s.lists.iter().find(|m| m.slug.as_str() == "members").unwrap().unsubscribed_at.is_some());
        assert_eq!(store.suppression(&email("jo@example.org")).await.unwrap(), None);
    }

    async fn unsubscribing_by_id_from_everything_suppresses_the_address(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        let id = store.add_subscriber(&subscriber("jo@example.org", &["members", "councillors"], true)).await.unwrap().id;
        assert!(store.unsubscribe_by_id(id, None).await.unwrap());
        assert!(statuses(&*store, id).await.iter().all(|(_, s)| *s == SubscriptionStatus::Unsubscribed));
        let suppression = store.suppression(&email("jo@example.org")).await.unwrap().unwrap();
        assert_eq!(suppression.reason, SuppressionReason::Unsubscribed);
        let err = store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
        let (_, pending_lists, _, _) = stored(store.sign_up(&signup("jo@example.org", &["members"], 1000)).await.unwrap());
        assert_eq!(pending_lists, ["The members list"], "a sign-up asks them to confirm");
        assert!(store.suppression(&email("jo@example.org")).await.unwrap().is_some(), "until they do, it stands");
    }

    async fn unsubscribing_an_unknown_id_returns_false(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let members = list_id(&*store, "members").await;
        assert!(!store.unsubscribe_by_id(4242, Some(&[members])).await.unwrap());
        assert!(!store.unsubscribe_by_id(4242, None).await.unwrap());
    }

    async fn one_batch_unsubscribes_each_pair_and_tells_which_subscribers_exist(db) {
        let (store, _) = world(db, 3).await;
        let members = list_id(&*store, "members").await;
        let addresses = ["m000@example.org", "m001@example.org", "m002@example.org"];
        let mut subscribers = Vec::new();
        for address in addresses {
            subscribers.push(store.subscriber(&email(address)).await.unwrap().id);
        }
        let exists = store
            .unsubscribe_from_lists(&[(subscribers[0], members), (4242, members), (subscribers[2], members), (subscribers[0], members)])
            .await
            .unwrap();
        assert_eq!(exists, [true, false, true, true]);
        let statuses: Vec<String> = {
            let mut out = Vec::new();
            for address in addresses {
                out.push(store.subscriber(&email(address)).await.unwrap().lists[0].status.to_string());
            }
            out
        };
        assert_eq!(statuses, ["unsubscribed", "confirmed", "unsubscribed"]);
    }

    async fn a_delivery_to_someone_who_unsubscribed_by_id_is_claimed_ineligible(db) {
        let (store, report) = world(db, 2).await;
        let id = campaign(&*store, report, &["members"]).await;
        let leaver = store.subscriber(&email("m001@example.org")).await.unwrap().id;
        let members = list_id(&*store, "members").await;
        assert!(store.unsubscribe_by_id(leaver, Some(&[members])).await.unwrap());
        let claimed = store.claim(id, "test-worker", 10, Duration::from_secs(60), ClaimFrom::Anywhere).await.unwrap();
        let eligible: Vec<(&str, bool)> = claimed.iter().map(|c| (c.email.as_str(), c.eligible)).collect();
        assert_eq!(eligible, [("m000@example.org", true), ("m001@example.org", false)]);
    }

    async fn a_stored_address_that_no_longer_parses_is_reported_corrupt_when_claimed(db) {
        let (store, report) = world(db, 2).await;
        let id = campaign(&*store, report, &["members"]).await;
        db.execute("UPDATE subscribers SET email = 'not an address' WHERE email = 'm001@example.org'").await;
        let err = store.claim(id, "test-worker", 10, Duration::from_secs(60), ClaimFrom::Anywhere).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert!(!err.is_bad_input());
    }

    async fn preferences_turn_lists_on_and_off_and_rename(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("staff", OptIn::Double)).await.unwrap();
        let (members, councillors, staff) =
            (list_id(&*store, "members").await, list_id(&*store, "councillors").await, list_id(&*store, "staff").await);
        let (id, ..) = stored(store.sign_up(&signup("jo@example.org", &["members", "staff"], 1000)).await.unwrap());
        let mut c = change(&[councillors, staff], &[members]);
        c.name = Some(SubscriberName::parse("Jo Bloggs").unwrap());
        let s = store.change_preferences(id, &c).await.unwrap();
        assert_eq!(s.name.as_deref(), Some("Jo Bloggs"));
        assert_eq!(statuses(&*store, id).await, [
            ("councillors".to_owned(), SubscriptionStatus::Confirmed),
            ("members".to_owned(), SubscriptionStatus::Unsubscribed),
            ("staff".to_owned(), SubscriptionStatus::Confirmed),
        ]);
        assert!(s.lists.iter().all(|m| m.consent.method == ConsentMethod::Form));
        assert_eq!(store.pending(id, 1000).await.unwrap(), None, "the old confirmation link no longer works");

        let mut c = change(&[], &[]);
        c.name = Some(None);
        assert_eq!(store.change_preferences(id, &c).await.unwrap().name, None);
        let err = store.change_preferences(4242, &change(&[members], &[])).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        let err = store.change_preferences(id, &change(&[4242], &[])).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    async fn preferences_lift_an_unsubscribe_from_everything(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let members = list_id(&*store, "members").await;
        let id = store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap().id;
        store.unsubscribe_by_id(id, None).await.unwrap();
        store.change_preferences(id, &change(&[members], &[])).await.unwrap();
        assert_eq!(statuses(&*store, id).await, [("members".to_owned(), SubscriptionStatus::Confirmed)]);
        assert_eq!(store.suppression(&email("jo@example.org")).await.unwrap(), None);
    }

    async fn preferences_cannot_resubscribe_an_erased_or_bounced_address(db) {
        let (store, report) = world(db, 2).await;
        let members = list_id(&*store, "members").await;
        let erased = store.subscriber(&email("m000@example.org")).await.unwrap().id;
        store.remove_subscriber(&email("m000@example.org"), true).await.unwrap();
        let err = store.change_preferences(erased, &change(&[members], &[])).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

        let id = campaign(&*store, report, &["members"]).await;
        let claimed = store.claim(id, "test-worker", 10, Duration::from_secs(60), ClaimFrom::Anywhere).await.unwrap();
        let bounced = claimed.iter().find(|c| c.email.as_str() == "m001@example.org").unwrap();
        let outcome = Outcome::Failed { error: "550 no such user".into(), hard_bounce: true };
        store.record("test-worker", &[Recorded { delivery_id: bounced.delivery_id, outcome }]).await.unwrap();
        store.unsubscribe_by_id(bounced.subscriber_id, None).await.unwrap();
        let suppression = store.suppression(&email("m001@example.org")).await.unwrap().unwrap();
        assert_eq!(suppression.reason, SuppressionReason::HardBounce, "an unsubscribe keeps the stronger reason");
        store.unsubscribe(&email("m001@example.org"), None).await.unwrap();
        let suppression = store.suppression(&email("m001@example.org")).await.unwrap().unwrap();
        assert_eq!(suppression.reason, SuppressionReason::HardBounce, "so does an admin's unsubscribe");
        let err = store.change_preferences(bounced.subscriber_id, &change(&[members], &[])).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("hard-bounced"), "{err}");
        assert_eq!(statuses(&*store, bounced.subscriber_id).await, [("members".to_owned(), SubscriptionStatus::Unsubscribed)]);
    }
}
