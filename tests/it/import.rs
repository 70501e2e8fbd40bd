//! CSV import through the library, on both backends.

use necmail::lists::{ListSlug, OptIn};
use necmail::store::Store;
use necmail::subscribers::import::{BATCH_ROWS, ImportCounts, ImportOptions, Reject, import_csv};
use necmail::subscribers::{SubscriberEmail, SubscriberFilter, SubscriptionStatus};

use crate::lists::{new_list, subscriber};
use crate::support::on_both_backends;

pub(crate) async fn import(
    store: &dyn Store,
    csv: impl Into<Vec<u8>>,
    confirmed: bool,
) -> (ImportCounts, Vec<Reject>) {
    let lists = vec![
        store
            .list(&ListSlug::parse("members").unwrap())
            .await
            .unwrap(),
    ];
    let mut rejects = Vec::new();
    let counts = import_csv(
        store,
        std::io::Cursor::new(csv.into()),
        &ImportOptions {
            lists,
            confirmed,
            channel: necmail::subscribers::AdminChannel::Cli,
            job: None,
        },
        |r| rejects.push(r.clone()),
        |_, _| {},
    )
    .await
    .unwrap();
    (counts, rejects)
}

const SAMPLE: &str = "email,name,role,council\n\
    ann@example.org,Ann,councillor,Islington\n\
    bob@example.org,Bob,member,\n\
    ANN@example.org,,,\n";

on_both_backends! {
    async fn a_first_import_creates_and_a_second_changes_nothing(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let (first, _) = import(&*store, SAMPLE, true).await;
        assert_eq!(first, ImportCounts { imported: 2, unchanged: 1, ..Default::default() });
        let before = store.subscribers(&SubscriberFilter::default(), 0, 100).await.unwrap();

        let (second, _) = import(&*store, SAMPLE, true).await;
        assert_eq!(second, ImportCounts { unchanged: 3, ..Default::default() });
        let after = store.subscribers(&SubscriberFilter::default(), 0, 100).await.unwrap();
        let fields = |v: &[necmail::subscribers::Subscriber]| -> Vec<String> {
            v.iter().map(|s| format!("{} {:?} {:?} {:?} {}", s.email, s.name, s.attributes, s.lists, s.updated_at)).collect()
        };
        assert_eq!(fields(&before), fields(&after));
        let ann = store.subscriber(&SubscriberEmail::parse("ann@example.org").unwrap()).await.unwrap();
        assert_eq!(ann.name.as_deref(), Some("Ann"));
        assert_eq!(ann.attributes.get("council"), Some("Islington"));
        assert_eq!(ann.lists[0].status, SubscriptionStatus::Confirmed);
        assert_eq!(ann.lists[0].consent.method, necmail::subscribers::ConsentMethod::Import);
    }

    async fn an_import_merges_new_fields_into_existing_subscribers(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        import(&*store, SAMPLE, false).await;
        let (counts, _) = import(&*store, "email,ward\nbob@example.org,Canonbury\n", true).await;
        assert_eq!(counts, ImportCounts { updated: 1, ..Default::default() });
        let bob = store.subscriber(&SubscriberEmail::parse("bob@example.org").unwrap()).await.unwrap();
        assert_eq!(bob.name.as_deref(), Some("Bob"));
        assert_eq!(bob.attributes.get("role"), Some("member"));
        assert_eq!(bob.attributes.get("ward"), Some("Canonbury"));
        assert_eq!(bob.lists[0].status, SubscriptionStatus::Confirmed);
    }

    async fn an_import_skips_suppressed_addresses_and_never_resubscribes_leavers(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        store.add_subscriber(&subscriber("left@example.org", &["members"], true)).await.unwrap();
        store.unsubscribe(&SubscriberEmail::parse("left@example.org").unwrap(), Some(&ListSlug::parse("members").unwrap())).await.unwrap();
        store.remove_subscriber(&SubscriberEmail::parse("erased@example.org").unwrap(), true).await.unwrap();

        let (counts, _) = import(&*store, "email\nleft@example.org\nErased@Example.org\nnew@example.org\n", true).await;
        assert_eq!(counts, ImportCounts { imported: 1, unchanged: 1, suppressed: 1, ..Default::default() });
        let left = store.subscriber(&SubscriberEmail::parse("left@example.org").unwrap()).await.unwrap();
        assert_eq!(left.lists[0].status, SubscriptionStatus::Unsubscribed);
        assert!(store.subscriber(&SubscriberEmail::parse("erased@example.org").unwrap()).await.is_err());
    }

    async fn bad_rows_are_rejected_with_their_line_and_the_rest_imported(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let mut csv = b"email,name\nok1@example.org,One\n".to_vec();
        csv.extend_from_slice(b"bad\xff@example.org,Two\n");
        csv.extend_from_slice(b"ok2@example.org,\"Three\r\nFour\"\n");
        csv.extend_from_slice(b"not an address,Five\n");
        csv.extend_from_slice(b"ok3@example.org,\xe2\x80\x98Six\xe2\x80\x99\n");
        let (counts, rejects) = import(&*store, csv, true).await;
        assert_eq!(counts, ImportCounts { imported: 2, rejected: 3, ..Default::default() });
        let lines: Vec<u64> = rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 6]);
        assert!(rejects[0].reason.contains("UTF-8"), "{:?}", rejects[0]);
        let six = store.subscriber(&SubscriberEmail::parse("ok3@example.org").unwrap()).await.unwrap();
        assert_eq!(six.name.as_deref(), Some("‘Six’"));
    }

    async fn a_large_file_is_imported_across_many_batches(db) {
        let store = db.store().await;
        store.create_list(&new_list("members", OptIn::Double)).await.unwrap();
        let rows = BATCH_ROWS * 2 + 17;
        let mut csv = String::from("email,name,role\n");
        for i in 0..rows {
            csv.push_str(&format!("m{i}@example.org,Member {i},member\n"));
        }
        // The same addresses again, spanning batch boundaries differently.
        csv.push_str("m0@example.org,,\n");
        let (counts, _) = import(&*store, csv, true).await;
        assert_eq!(counts.imported, rows as u64);
        assert_eq!(counts.unchanged, 1);
        let list = store.list(&ListSlug::parse("members").unwrap()).await.unwrap();
        assert_eq!(list.subscribers.confirmed, rows as i64);
    }
}
