//! Subscribers, subscriptions, consent and suppression, on both backends.

use necmail::lists::{ListSlug, OptIn};
use necmail::store::StoreError;
use necmail::subscribers::{
    AttributePair, ConsentMethod, StatusFilter, SubscriberEmail, SubscriberFilter, SubscriberName,
    SubscriberStatus, SubscriberUpdate, SubscriptionStatus, SuppressionReason,
};

use crate::lists::{new_list, subscriber};
use crate::support::on_both_backends;

fn email(s: &str) -> SubscriberEmail {
    SubscriberEmail::parse(s).unwrap()
}

fn slug(s: &str) -> ListSlug {
    ListSlug::parse(s).unwrap()
}

fn attr(s: &str) -> AttributePair {
    s.parse().unwrap()
}

async fn emails(store: &dyn necmail::store::Store, filter: SubscriberFilter) -> Vec<String> {
    store
        .subscribers(&filter, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|s| s.email.to_string())
        .collect()
}

on_both_backends! {
    async fn an_admin_add_to_a_double_opt_in_list_stays_unconfirmed(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let s = store.add_subscriber(&subscriber("jo@example.org", &["members"], false)).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Unconfirmed);
        assert_eq!(s.lists[0].confirmed_at, None);
    }

    async fn confirmed_adds_and_single_opt_in_lists_confirm_at_once(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Single)).await.unwrap();
        let s = store.add_subscriber(&subscriber("jo@example.org", &["councillors"], false)).await.unwrap();
        assert_eq!(s.lists[0].status, SubscriptionStatus::Confirmed);
        let s = store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        assert!(s.lists.iter().all(|m| m.status == SubscriptionStatus::Confirmed && m.confirmed_at.is_some()));
    }

    async fn the_consent_record_is_kept_with_each_subscription(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut new = subscriber("jo@example.org", &["members"], true);
        new.consent.ip = Some("192.0.2.7".into());
        new.consent.wording = "form-v3".into();
        store.add_subscriber(&new).await.unwrap();
        let s = store.subscriber(&email("jo@example.org")).await.unwrap();
        let consent = &s.lists[0].consent;
        assert_eq!(consent.method, ConsentMethod::Admin);
        assert_eq!(consent.ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(consent.wording, "form-v3");
        assert_eq!(consent.at.timestamp(), new.consent.at.timestamp());
    }

    async fn the_same_address_in_another_case_is_the_same_person(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("Jo.Bloggs@Example.org", &["members"], true)).await.unwrap();
        store.add_subscriber(&subscriber("jo.bloggs@EXAMPLE.ORG", &["councillors"], true)).await.unwrap();
        let all = store.subscribers(&SubscriberFilter::default(), 0, 100).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].email.as_str(), "Jo.Bloggs@example.org");
        assert_eq!(all[0].lists.len(), 2);
    }

    async fn adding_to_an_unknown_list_stores_nothing(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let err = store.add_subscriber(&subscriber("jo@example.org", &["members", "nope"], true)).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(matches!(store.subscriber(&email("jo@example.org")).await, Err(StoreError::NotFound(_))));
    }

    async fn a_second_add_merges_name_and_attributes(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut first = subscriber("jo@example.org", &["members"], true);
        first.name = SubscriberName::parse("Jo").unwrap();
        first.attributes = [attr("role=member"), attr("ward=Canonbury")].into_iter().collect();
        store.add_subscriber(&first).await.unwrap();
        let mut second = subscriber("jo@example.org", &["members"], false);
        second.attributes = [attr("role=councillor")].into_iter().collect();
        let s = store.add_subscriber(&second).await.unwrap();
        assert_eq!(s.name.as_deref(), Some("Jo"));
        assert_eq!(s.attributes.get("role"), Some("councillor"));
        assert_eq!(s.attributes.get("ward"), Some("Canonbury"));
        assert_eq!(s.lists[0].status, SubscriptionStatus::Confirmed, "a later unconfirmed add never downgrades");
    }

    async fn filters_select_by_list_status_attribute_and_search(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        let mut a = subscriber("ann@example.org", &["members", "councillors"], true);
        a.attributes = [attr("role=councillor"), attr("council=Islington")].into_iter().collect();
        a.name = SubscriberName::parse("Ann 100% Smith").unwrap();
        store.add_subscriber(&a).await.unwrap();
        let mut b = subscriber("bob@example.org", &["members"], false);
        b.attributes = [attr("role=member")].into_iter().collect();
        store.add_subscriber(&b).await.unwrap();
        store.add_subscriber(&subscriber("cat@example.net", &["members"], true)).await.unwrap();
        store.set_blocklisted(&email("cat@example.net"), true).await.unwrap();

        let f = |list: Option<&str>, status: Option<StatusFilter>, attrs: &[&str], search: Option<&str>| SubscriberFilter {
            list: list.map(slug),
            status,
            attributes: attrs.iter().map(|a| attr(a)).collect(),
            search: search.map(str::to_owned),
        };
        let s = &*store;
        assert_eq!(emails(s, f(Some("councillors"), None, &[], None)).await, ["ann@example.org"]);
        assert_eq!(
            emails(s, f(Some("members"), Some(StatusFilter::Subscription(SubscriptionStatus::Unconfirmed)), &[], None)).await,
            ["bob@example.org"]
        );
        assert_eq!(emails(s, f(None, Some(StatusFilter::Blocklisted), &[], None)).await, ["cat@example.net"]);
        assert_eq!(emails(s, f(None, None, &["role=councillor"], None)).await, ["ann@example.org"]);
        assert_eq!(emails(s, f(None, None, &["role=councillor", "council=Camden"], None)).await, Vec::<String>::new());
        assert_eq!(emails(s, f(None, None, &[], Some("EXAMPLE.NET"))).await, ["cat@example.net"]);
        assert_eq!(emails(s, f(None, None, &[], Some("100%"))).await, ["ann@example.org"]);
        assert_eq!(emails(s, f(None, None, &[], Some("_"))).await, Vec::<String>::new(), "_ is literal, not a wildcard");
    }

    async fn pages_cover_every_subscriber_once_in_order(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        for i in 0..25 {
            store.add_subscriber(&subscriber(&format!("m{i:02}@example.org"), &["members"], true)).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = store.subscribers(&SubscriberFilter::default(), after, 10).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.id;
            seen.extend(page.iter().map(|s| s.email.to_string()));
        }
        let expected: Vec<String> = (0..25).map(|i| format!("m{i:02}@example.org")).collect();
        assert_eq!(seen, expected);
    }

    async fn an_update_sets_unsets_and_clears(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut new = subscriber("jo@example.org", &["members"], true);
        new.name = SubscriberName::parse("Jo").unwrap();
        new.attributes = [attr("role=member"), attr("ward=Canonbury")].into_iter().collect();
        store.add_subscriber(&new).await.unwrap();
        let update = SubscriberUpdate {
            name: Some(None),
            set: [attr("council=Islington")].into_iter().collect(),
            unset: vec!["ward".into()],
        };
        let s = store.update_subscriber(&email("jo@example.org"), &update).await.unwrap();
        assert_eq!(s.name, None);
        assert_eq!(s.attributes.iter().collect::<Vec<_>>(), [("council", "Islington"), ("role", "member")]);
        assert_eq!(store.attribute_keys().await.unwrap(), ["council", "role"]);
    }

    async fn unsubscribing_from_one_list_keeps_the_others(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members", "councillors"], true)).await.unwrap();
        let s = store.unsubscribe(&email("jo@example.org"), Some(&slug("members"))).await.unwrap();
        let statuses: Vec<(&str, SubscriptionStatus)> = s.lists.iter().map(|m| (m.slug.as_str(), m.status)).collect();
        assert_eq!(statuses, [("councillors", SubscriptionStatus::Confirmed), ("members", SubscriptionStatus::Unsubscribed)]);
        assert!(s.lists[1].unsubscribed_at.is_some());
        assert_eq!(store.suppression(&email("jo@example.org")).await.unwrap(), None);
        let err = store.unsubscribe(&email("jo@example.org"), Some(&slug("nope"))).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)));
    }

    async fn unsubscribing_from_everything_suppresses_the_address(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        store.unsubscribe(&email("jo@example.org"), None).await.unwrap();
        let suppression = store.suppression(&email("JO@example.org")).await.unwrap().unwrap();
        assert_eq!(suppression.reason, SuppressionReason::Unsubscribed);
        let err = store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(_)));
        assert!(err.to_string().contains("unsubscribed from everything"), "{err}");
    }

    async fn blocking_and_unblocking_flip_the_status(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        assert_eq!(store.set_blocklisted(&email("jo@example.org"), true).await.unwrap().status, SubscriberStatus::Blocklisted);
        assert_eq!(store.set_blocklisted(&email("jo@example.org"), false).await.unwrap().status, SubscriberStatus::Active);
        assert!(matches!(store.set_blocklisted(&email("x@example.org"), true).await, Err(StoreError::NotFound(_))));
    }

    async fn erasure_deletes_the_person_but_keeps_the_objection(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut new = subscriber("jo@example.org", &["members"], true);
        new.name = SubscriberName::parse("Jo Bloggs").unwrap();
        store.add_subscriber(&new).await.unwrap();
        assert!(store.remove_subscriber(&email("jo@example.org"), true).await.unwrap());
        assert!(matches!(store.subscriber(&email("jo@example.org")).await, Err(StoreError::NotFound(_))));
        assert_eq!(store.list(&slug("members")).await.unwrap().subscribers, Default::default());
        let err = store.add_subscriber(&subscriber("Jo@Example.org", &["members"], true)).await.unwrap_err();
        assert!(err.to_string().contains("erased"), "{err}");
    }

    async fn a_plain_removal_allows_the_address_back(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
        assert!(store.remove_subscriber(&email("jo@example.org"), false).await.unwrap());
        assert!(matches!(store.remove_subscriber(&email("jo@example.org"), false).await, Err(StoreError::NotFound(_))));
        store.add_subscriber(&subscriber("jo@example.org", &["members"], true)).await.unwrap();
    }

    async fn erasing_an_unknown_address_still_records_the_objection(db) {
        let store = db.store().await;
        assert!(!store.remove_subscriber(&email("never@example.org"), true).await.unwrap());
        assert_eq!(store.suppression(&email("never@example.org")).await.unwrap().unwrap().reason, SuppressionReason::Erased);
    }
}
