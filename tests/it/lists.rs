//! Lists, on both backends.

use necmail::lists::{ListSlug, NewList, OptIn};
use necmail::store::{Store, StoreError};
use necmail::subscribers::{AdminChannel, Consent, ConsentMethod, NewSubscriber, SubscriberEmail};

use crate::support::on_both_backends;

pub fn new_list(slug: &str, opt_in: OptIn) -> NewList {
    NewList {
        slug: ListSlug::parse(slug).unwrap(),
        name: format!("The {slug} list"),
        description: String::new(),
        opt_in,
        public: true,
    }
}

pub fn subscriber(email: &str, lists: &[&str], confirmed: bool) -> NewSubscriber {
    NewSubscriber {
        email: SubscriberEmail::parse(email).unwrap(),
        name: None,
        attributes: Default::default(),
        lists: lists.iter().map(|l| ListSlug::parse(l).unwrap()).collect(),
        confirmed,
        resubscribe: false,
        consent: Consent::by_admin(AdminChannel::Cli, ConsentMethod::Admin),
    }
}

/// The id of list `slug`.
pub async fn list_id(store: &dyn Store, slug: &str) -> i64 {
    store
        .list(&ListSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .id
}

fn slug(s: &str) -> ListSlug {
    ListSlug::parse(s).unwrap()
}

on_both_backends! {
    async fn a_new_list_is_listed_with_zero_counts(db) {
        let store = db.store().await;
        let created = store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        assert_eq!(created.slug.as_str(), "members");
        assert_eq!(created.opt_in, OptIn::Double);
        let lists = store.lists().await.unwrap();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].subscribers, Default::default());
    }

    async fn lists_come_back_in_slug_order(db) {
        let store = db.store().await;
        for s in ["members", "councillors", "ward-officers"] {
            store.create_list(&new_list(s, OptIn::Double)).await.unwrap();
        }
        let slugs: Vec<String> = store.lists().await.unwrap().iter().map(|l| l.slug.to_string()).collect();
        assert_eq!(slugs, ["councillors", "members", "ward-officers"]);
    }

    async fn a_duplicate_slug_is_refused_and_the_first_list_is_kept(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut again = new_list("members", OptIn::Single);
        again.name = "Impostor".into();
        let err = store.create_list(&again).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(err.is_bad_input());
        let kept = store.list(&slug("members")).await.unwrap();
        assert_eq!(kept.name, "The members list");
        assert_eq!(kept.opt_in, OptIn::Double);
    }

    async fn renaming_changes_only_the_name(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let renamed = store.rename_list(&slug("members"), "All members").await.unwrap();
        assert_eq!(renamed.name, "All members");
        assert_eq!(renamed.slug.as_str(), "members");
    }

    async fn an_unknown_list_is_not_found(db) {
        let store = db.store().await;
        assert!(matches!(store.list(&slug("nope")).await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.rename_list(&slug("nope"), "x").await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.delete_list(&slug("nope"), true).await, Err(StoreError::NotFound(_))));
    }

    async fn counts_follow_each_status(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("a@example.org", &["members"], true)).await.unwrap();
        store.add_subscriber(&subscriber("b@example.org", &["members"], false)).await.unwrap();
        store.add_subscriber(&subscriber("c@example.org", &["members"], true)).await.unwrap();
        store.add_subscriber(&subscriber("d@example.org", &["members"], true)).await.unwrap();
        store.unsubscribe(&SubscriberEmail::parse("c@example.org").unwrap(), Some(&slug("members"))).await.unwrap();
        store.set_blocklisted(&SubscriberEmail::parse("d@example.org").unwrap(), true).await.unwrap();
        let c = store.list(&slug("members")).await.unwrap().subscribers;
        assert_eq!((c.confirmed, c.unconfirmed, c.unsubscribed, c.blocklisted), (1, 1, 1, 1));
    }

    async fn a_list_with_subscribers_is_only_deleted_with_force(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.create_list(&new_list("councillors", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("a@example.org", &["members", "councillors"], true)).await.unwrap();

        let err = store.delete_list(&slug("members"), false).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(store.list(&slug("members")).await.unwrap().subscribers.confirmed, 1);

        store.delete_list(&slug("members"), true).await.unwrap();
        assert!(matches!(store.list(&slug("members")).await, Err(StoreError::NotFound(_))));
        let a = store.subscriber(&SubscriberEmail::parse("a@example.org").unwrap()).await.unwrap();
        let lists: Vec<&str> = a.lists.iter().map(|m| m.slug.as_str()).collect();
        assert_eq!(lists, ["councillors"]);
    }

    async fn an_empty_list_is_deleted_without_force(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.delete_list(&slug("members"), false).await.unwrap();
        assert!(store.lists().await.unwrap().is_empty());
    }
}
